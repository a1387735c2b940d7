"""The `gr00t` policy family against reference servers on 127.0.0.1 (served from a thread):
both observation forms, batching, history frames, preflight problems, token handling."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from gr00t_arena_helpers import GoalPolicy, free_port, thread_server

import arena
from arena.contract import Observation
from arena.errors import ContractError, PolicyError
from arena.plugins import load_plugins
from arena.run import check_compat, make_env
from arena_gr00t import Gr00tServer, ModalityConfig
from arena_gr00t.policy import Gr00tConfig, Gr00tPolicy
from arena_gr00t.serve import LANGUAGE_KEY, ServedGr00tHandler

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(scope="module")
def spec():
    env, _ = make_env(load_plugins(), "debug/reach", None, 1)
    env.close()
    return env.spec


def outcomes(summary_records: list) -> dict:
    return {(r.task, r.episode_index): (r.success, r.length) for r in summary_records}


def run(policy: Any, policy_config: Any = None, **kw: Any) -> list:
    records: list = []
    arena.evaluate(
        policy,
        "debug/suite",
        episodes=3,
        num_envs=2,
        write=False,
        policy_config=policy_config,
        on_episode=lambda r, done, total: records.append(r),
        **kw,
    )
    return records


def debug_obs(positions: list[list[float]]) -> Observation:
    n = len(positions)
    pos = np.asarray(positions, np.float32)
    return Observation(
        images={"top": np.zeros((n, 32, 32, 3), np.uint8)},
        state={"position": pos, "goal": pos + 0.25},
        instruction=["move the point to the green goal"] * n,
        env_ids=np.arange(n),
    )


class Delegate:
    """A handler wrapper (the server binds the handler's methods when it is built)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.batches: list[int] = []
        self.observations: list[dict] = []

    def get_modality_config(self) -> dict[str, ModalityConfig]:
        return self.inner.get_modality_config()

    def reset(self, options: dict | None = None) -> dict:
        return self.inner.reset(options)

    def get_action(self, observation: dict, options: dict | None = None):
        self.observations.append({k: {kk: np.array(vv) for kk, vv in v.items()} for k, v in observation.items()})
        self.batches.append(len(observation["language"][LANGUAGE_KEY]))
        return self.inner.get_action(observation, options)


@pytest.mark.parametrize("flat", [False, True], ids=["nested", "flat"])
def test_remote_policy_matches_in_process_in_both_forms(flat, spec):
    local = run(GoalPolicy)
    with thread_server(GoalPolicy, flat=flat) as (server, _):
        remote = run("gr00t", {"port": server.port})
        with Gr00tPolicy(Gr00tConfig(port=server.port), spec, 2) as policy:
            desc = policy.describe()
    assert outcomes(remote) == outcomes(local)
    assert sum(r.success for r in remote) >= 4
    assert desc.problems == []
    assert desc.action_horizon == 4 and desc.cameras == {"top": None} and desc.uses_instruction
    form = "flat" if flat else "nested"
    assert desc.info["observation form"].startswith(f"{form} (detected: ")
    assert policy.form == form


def test_forced_form_and_disabled_probe(spec):
    with thread_server(GoalPolicy, flat=False) as (server, _):
        with Gr00tPolicy(Gr00tConfig(port=server.port, observation_form="flat"), spec, 1) as policy:
            problems = policy.describe().problems
        with Gr00tPolicy(Gr00tConfig(port=server.port, probe=False), spec, 1) as policy:
            desc = policy.describe()
    assert any(
        "the server refused the probe observation (flat form:" in p and "takes the nested form" in p for p in problems
    )
    assert (
        desc.problems == [] and "not detected (probe disabled); defaulting to nested" in desc.info["observation form"]
    )


def test_one_batched_get_action_per_infer(spec):
    from arena.remote.serving import ServedPolicy

    served = ServedPolicy(GoalPolicy, "debug/reach", max_batch=8)
    handler = Delegate(ServedGr00tHandler(served))
    with Gr00tServer(handler, port=0, poll_interval_s=0.02) as server:
        server.start_in_thread()
        with Gr00tPolicy(Gr00tConfig(port=server.port), spec, 3) as policy:
            assert policy.describe().problems == []
            assert handler.batches == [1]  # the probe
            policy.reset([0, 1, 2])
            chunk = policy.infer(debug_obs([[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]]), np.array([True, False, True]))
    served.close()
    assert handler.batches == [1, 2]
    assert chunk.env_ids.tolist() == [0, 2] and chunk.actions.shape == (2, 4, 2)
    np.testing.assert_allclose(handler.observations[-1]["state"]["position"][:, 0], [[0.1, 0.1], [0.3, 0.3]])


class HistoryHandler:
    """Asks for two state frames (delta_indices [-1, 0]) and records what arrives."""

    def __init__(self) -> None:
        self.received: list[np.ndarray] = []

    def get_modality_config(self) -> dict[str, ModalityConfig]:
        return {
            "state": ModalityConfig([-1, 0], ["position", "goal"]),
            "action": ModalityConfig([0, 1], ["delta"]),
            "language": ModalityConfig([0], [LANGUAGE_KEY]),
        }

    def reset(self, options: dict | None = None) -> dict:
        return {}

    def get_action(self, observation: dict, options: dict | None = None):
        position = observation["state"]["position"]
        self.received.append(np.array(position[:, :, 0]))
        return {"delta": np.zeros((position.shape[0], 2, 2), np.float32)}, {}


def test_history_frames_with_partial_reset(spec):
    handler = HistoryHandler()
    with Gr00tServer(handler, port=0, poll_interval_s=0.02) as server:
        server.start_in_thread()
        with Gr00tPolicy(Gr00tConfig(port=server.port), spec, 2) as policy:
            desc = policy.describe()
            assert desc.problems == [] and desc.action_horizon == 2 and "history" in desc.info
            both = np.array([True, True])
            policy.reset([0, 1])
            policy.infer(debug_obs([[0.1, 0.1], [0.5, 0.5]]), both)
            policy.infer(debug_obs([[0.2, 0.2], [0.6, 0.6]]), both)
            policy.reset([1])
            policy.infer(debug_obs([[0.3, 0.3], [0.7, 0.7]]), both)
            policy.infer(debug_obs([[0.4, 0.4], [0.0, 0.0]]), np.array([True, False]))
    got = [np.round(r.astype(np.float64), 3).tolist() for r in handler.received[1:]]  # [0] is the probe
    assert got == [
        [[0.1, 0.1], [0.5, 0.5]],  # episode start: the first frame repeated
        [[0.1, 0.2], [0.5, 0.6]],
        [[0.2, 0.3], [0.7, 0.7]],  # slot 1 was reset, slot 0 keeps its history
        [[0.3, 0.4]],  # only slot 0 queried
    ]


class WrongWidthHandler(HistoryHandler):
    def get_modality_config(self) -> dict[str, ModalityConfig]:
        return {**super().get_modality_config(), "state": ModalityConfig([0], ["position", "goal"])}

    def get_action(self, observation: dict, options: dict | None = None):
        b = observation["state"]["position"].shape[0]
        return {"delta": np.zeros((b, 2, 3), np.float32)}, {}


def test_mis_sized_reply_is_a_preflight_problem(spec):
    with Gr00tServer(WrongWidthHandler(), port=0, poll_interval_s=0.02) as server:
        server.start_in_thread()
        with Gr00tPolicy(Gr00tConfig(port=server.port), spec, 1) as policy:
            desc = policy.describe()
            with pytest.raises(PolicyError, match="gr00t policy cannot run"):
                policy.infer(debug_obs([[0.1, 0.1]]), np.array([True]))
    assert any(
        "probe: action key 'delta': expected shape (1, 2, 2)" in p and "received (1, 2, 3) float32" in p
        for p in desc.problems
    ), desc.problems
    with pytest.raises(ContractError, match="action key 'delta'"):
        check_compat(spec, desc)


def test_unreachable_server_names_host_and_port(spec):
    port = free_port()
    with Gr00tPolicy(Gr00tConfig(port=port, timeout=0.5, retries=0), spec, 1) as policy:
        desc = policy.describe()
        with pytest.raises(PolicyError, match=f"127.0.0.1:{port} is not reachable"):
            policy.infer(debug_obs([[0.1, 0.1]]), np.array([True]))
    assert len(desc.problems) == 1 and f"GR00T server at 127.0.0.1:{port} is not reachable" in desc.problems[0]


def test_missing_mapping_file_is_a_problem(spec, tmp_path):
    with Gr00tPolicy(Gr00tConfig(mapping=str(tmp_path / "none.toml")), spec, 1) as policy:
        problems = policy.describe().problems
    assert problems and "is neither a packaged mapping (sawyer, point2d, libero_panda) nor a file" in problems[0]


def test_token_is_sent_and_redacted_in_results(tmp_path, monkeypatch, spec):
    from arena.remote.serving import ServedPolicy

    served = ServedPolicy(GoalPolicy, "debug/reach", max_batch=4)
    with Gr00tServer(ServedGr00tHandler(served), port=0, api_token="tok-123", poll_interval_s=0.02) as server:
        server.start_in_thread()
        with Gr00tPolicy(Gr00tConfig(port=server.port, retries=0), spec, 1) as policy:
            refused = policy.describe().problems
        summary = arena.evaluate(
            "gr00t",
            "debug/reach",
            episodes=1,
            policy_config={"port": server.port, "token": "tok-123"},
            output=tmp_path / "run",
        )
        monkeypatch.setenv("ARENA_GR00T_API_TOKEN", "tok-123")
        with Gr00tPolicy(Gr00tConfig(port=server.port), spec, 1) as policy:
            from_env = policy.describe().problems
    served.close()
    assert any("Unauthorized" in p for p in refused)
    assert from_env == []
    assert summary.overall.episodes == 1
    summary_text = (tmp_path / "run" / "summary.json").read_text()
    assert "tok-123" not in summary_text and '"token": "<redacted>"' in summary_text
    assert json.loads(summary_text)["config"]["policy_config"]["port"] == server.port
    # config.json is the run's identity: connection fields (and so the token) are not part of it
    stored = json.loads((tmp_path / "run" / "config.json").read_text())["policy_config"]
    assert "token" not in stored and "port" not in stored and "host" not in stored


def test_replicas_share_one_batch_and_must_agree(spec):
    from arena.remote.serving import ServedPolicy

    served = ServedPolicy(GoalPolicy, "debug/reach", max_batch=8)
    a, b = Delegate(ServedGr00tHandler(served)), Delegate(ServedGr00tHandler(served))
    with Gr00tServer(a, port=0, poll_interval_s=0.02) as sa, Gr00tServer(b, port=0, poll_interval_s=0.02) as sb:
        sa.start_in_thread()
        sb.start_in_thread()
        hosts = f"127.0.0.1:{sa.port},127.0.0.1:{sb.port}"
        with Gr00tPolicy(Gr00tConfig(host=hosts), spec, 4) as policy:
            assert policy.describe().problems == []
            chunk = policy.infer(debug_obs([[0.1, 0.1], [0.2, 0.2], [0.3, 0.3], [0.4, 0.4]]), np.ones(4, bool))
        b.inner.modality_config = {**b.inner.modality_config, "action": ModalityConfig(range(2), ["delta"])}
        with Gr00tPolicy(Gr00tConfig(host=hosts), spec, 4) as policy:
            problems = policy.describe().problems
    served.close()
    assert a.batches[-1] == 2 and b.batches[-1] == 2  # one get_action split over the two replicas
    assert chunk.env_ids.tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(chunk.actions[:, 0], np.clip(0.25 / 0.1, -1, 1) * np.ones((4, 2)))
    assert problems and f"replicas disagree: the modality config of 127.0.0.1:{sb.port} differs" in problems[0]


def test_a_lost_replica_is_marked_down_and_its_rows_go_to_a_live_one(spec):
    from arena.remote.serving import ServedPolicy

    served = ServedPolicy(GoalPolicy, "debug/reach", max_batch=8)
    a, b = Delegate(ServedGr00tHandler(served)), Delegate(ServedGr00tHandler(served))
    with Gr00tServer(a, port=0, poll_interval_s=0.02) as sa:
        sa.start_in_thread()
        sb = Gr00tServer(b, port=0, poll_interval_s=0.02)
        sb.start_in_thread()
        hosts = f"127.0.0.1:{sa.port},127.0.0.1:{sb.port}"
        config = Gr00tConfig(host=hosts, timeout=0.5, retries=1, backoff=0.01)
        obs = debug_obs([[0.1, 0.1], [0.2, 0.2], [0.3, 0.3], [0.4, 0.4]])
        with Gr00tPolicy(config, spec, 4) as policy:
            assert policy.describe().problems == []
            sb.close()  # replica b goes away after preflight
            chunk = policy.infer(obs, np.ones(4, bool))
            assert policy.pool.down.keys() == {1}
            again = policy.infer(obs, np.ones(4, bool))
    served.close()
    assert chunk.env_ids.tolist() == [0, 1, 2, 3] and again.env_ids.tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(chunk.actions[:, 0], np.clip(0.25 / 0.1, -1, 1) * np.ones((4, 2)))
    assert a.batches[-3:] == [2, 2, 4]  # its piece, b's piece re-sent to it, then the whole batch


def test_unknown_embodiment_asks_for_a_mapping(spec):
    import attrs

    other = attrs.evolve(spec, embodiment="hexapod")
    with Gr00tPolicy(Gr00tConfig(), other, 1) as policy:
        problems = policy.describe().problems
    assert len(problems) == 1
    assert (
        "no GR00T mapping for embodiment 'hexapod' (env debug/reach); registered: gr00t:libero_panda, gr00t:point2d, gr00t:sawyer"
        in problems[0]
    )
    assert "--mapping PATH" in problems[0] and "'gr00t:hexapod'" in problems[0]
