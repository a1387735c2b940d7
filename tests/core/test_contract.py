"""The canonical contract: validation errors name the field, the expected and the received shape;
numpy and torch (CPU) arrays are both accepted."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from arena.contract import ActionChunk, ActionGroup, EnvSpec, Observation, Task
from arena.errors import ContractError


def make_spec(**overrides) -> EnvSpec:
    kw = dict(
        name="toy/arm",
        embodiment="arm",
        cameras={"front": (4, 6), "wrist": (2, 2)},
        state_groups={"joints": ("j1", "j2", "j3"), "gripper": ("g",)},
        action_groups=(
            ActionGroup("arm", ("a1", "a2", "a3"), low=[-1, -1, -1], high=[1, 1, 1]),
            ActionGroup("gripper", ("g",), low=[0], high=[1]),
        ),
        tasks=(Task("lift", "lift the cube"), Task("push", "push the cube")),
        max_episode_steps=10,
    )
    kw.update(overrides)
    return EnvSpec(**kw)


def make_obs(n: int = 3, kind=np.asarray, **overrides) -> Observation:
    kw = dict(
        images={
            "front": kind(np.arange(n * 4 * 6 * 3).reshape(n, 4, 6, 3).astype(np.uint8)),
            "wrist": kind(np.zeros((n, 2, 2, 3), np.uint8)),
        },
        state={
            "joints": kind(np.arange(n * 3, dtype=np.float32).reshape(n, 3)),
            "gripper": kind(np.arange(n, dtype=np.float32).reshape(n, 1)),
        },
        instruction=[f"task {i}" for i in range(n)],
        env_ids=np.arange(n) + 10,
    )
    kw.update(overrides)
    return Observation(**kw)


# -- ActionGroup / EnvSpec ------------------------------------------------------------------------------


def test_action_group_bounds_must_match_elements() -> None:
    with pytest.raises(ContractError) as err:
        ActionGroup("arm", ("a", "b"), low=[0, 0, 0], high=[1, 1])
    assert "'arm'" in str(err.value) and "low must have shape (2,)" in str(err.value) and "got (3,)" in str(err.value)
    assert ActionGroup("g", ("x",), low=[0], high=[1]).size == 1


def test_env_spec_action_layout() -> None:
    spec = make_spec()
    assert spec.action_dim == 4
    assert spec.action_low.tolist() == [-1, -1, -1, 0]
    assert spec.action_high.tolist() == [1, 1, 1, 1]
    assert spec.action_slice("arm") == slice(0, 3)
    assert spec.action_slice("gripper") == slice(3, 4)
    assert spec.state_size("joints") == 3
    assert spec.hold.tolist() == [0, 0, 0, 0]
    assert spec.task("push").instruction == "push the cube"


def test_env_spec_unknown_names_are_listed() -> None:
    spec = make_spec()
    with pytest.raises(ContractError, match=r"no action group 'base' \(known: arm, gripper\)"):
        spec.action_slice("base")
    with pytest.raises(ContractError, match="has no task 'fly'"):
        spec.task("fly")


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"tasks": ()}, "tasks must not be empty"),
        ({"max_episode_steps": 0}, "max_episode_steps must be >= 1, got 0"),
        ({"hold_action": np.zeros(3)}, r"hold_action must have shape \(4,\), got \(3,\)"),
        (
            {"action_groups": (ActionGroup("a", ("x",), [0], [1]), ActionGroup("a", ("y",), [0], [1]))},
            "duplicate action group 'a'",
        ),
    ],
)
def test_env_spec_validation(overrides: dict, message: str) -> None:
    with pytest.raises(ContractError, match=message):
        make_spec(**overrides)


def test_env_spec_custom_hold_action_and_dict() -> None:
    spec = make_spec(hold_action=[0.5, 0, 0, 1])
    assert spec.hold.tolist() == [0.5, 0, 0, 1]
    d = spec.to_dict()
    assert d["cameras"] == {"front": [4, 6], "wrist": [2, 2]}
    assert d["state_groups"]["joints"] == ["j1", "j2", "j3"]
    assert [g["name"] for g in d["action_groups"]] == ["arm", "gripper"]
    assert d["action_groups"][1] == {"name": "gripper", "elements": ["g"], "low": [0.0], "high": [1.0]}
    assert d["tasks"] == [
        {"name": "lift", "instruction": "lift the cube"},
        {"name": "push", "instruction": "push the cube"},
    ]
    assert d["max_episode_steps"] == 10


# -- Observation -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [np.asarray, torch.as_tensor])
def test_valid_observation_passes(kind) -> None:
    make_obs(kind=kind).validate(make_spec())


@pytest.mark.parametrize("kind", [np.asarray, torch.as_tensor])
def test_wrong_image_shape_names_camera_expected_and_received(kind) -> None:
    obs = make_obs(kind=kind)
    obs.images["front"] = kind(np.zeros((3, 4, 5, 3), np.uint8))
    with pytest.raises(ContractError) as err:
        obs.validate(make_spec())
    assert str(err.value) == "observation.images['front']: expected shape (3, 4, 6, 3), got (3, 4, 5, 3)"


@pytest.mark.parametrize("kind", [np.asarray, torch.as_tensor])
def test_wrong_state_shape_names_group_expected_and_received(kind) -> None:
    obs = make_obs(kind=kind)
    obs.state["joints"] = kind(np.zeros((3, 2), np.float32))
    with pytest.raises(ContractError) as err:
        obs.validate(make_spec())
    assert str(err.value) == "observation.state['joints']: expected shape (3, 3), got (3, 2)"


def test_missing_state_group_and_instruction_count() -> None:
    obs = make_obs()
    del obs.state["gripper"]
    with pytest.raises(ContractError, match="observation.state: missing group 'gripper'"):
        obs.validate(make_spec())
    with pytest.raises(ContractError, match="observation.instruction: expected 3 strings, got 2"):
        make_obs(instruction=["a", "b"]).validate(make_spec())


@pytest.mark.parametrize("kind", [np.asarray, torch.as_tensor])
def test_observation_rows_keeps_kind_and_picks_rows(kind) -> None:
    obs = make_obs(kind=kind)
    sub = obs.rows([2, 0])
    assert sub.num_envs == 2
    assert sub.env_ids.tolist() == [12, 10]
    assert sub.instruction == ["task 2", "task 0"]
    assert type(sub.state["joints"]) is type(obs.state["joints"])
    assert np.asarray(sub.state["joints"]).tolist() == [[6, 7, 8], [0, 1, 2]]
    assert np.array_equal(np.asarray(sub.images["front"][1]), np.asarray(obs.images["front"][0]))
    sub.validate(make_spec())  # a sub-batch is itself a valid observation


# -- ActionChunk -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [np.asarray, torch.as_tensor])
def test_action_chunk_accepts_numpy_and_torch(kind) -> None:
    chunk = ActionChunk(kind(np.ones((2, 5, 4), np.float64)), [3, 7])
    assert chunk.horizon == 5
    assert chunk.env_ids.dtype == np.int64 and chunk.env_ids.tolist() == [3, 7]
    out = chunk.numpy()
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (2, 5, 4)


@pytest.mark.parametrize("kind", [np.asarray, torch.as_tensor])
def test_action_chunk_needs_three_dims(kind) -> None:
    with pytest.raises(ContractError) as err:
        ActionChunk(kind(np.zeros((2, 4), np.float32)), [0, 1])
    assert "expected 3 dims (envs, horizon, action_dim), got shape (2, 4)" in str(err.value)


@pytest.mark.parametrize("kind", [np.asarray, torch.as_tensor])
def test_action_chunk_needs_one_row_per_env_id(kind) -> None:
    with pytest.raises(ContractError, match=r"expected 2 rows \(one per env id\), got 3"):
        ActionChunk(kind(np.zeros((3, 1, 4), np.float32)), [0, 1])
