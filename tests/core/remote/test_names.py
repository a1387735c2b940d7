"""Names a mapping refers to, resolved against an env spec: groups, joints, one set of messages."""

from __future__ import annotations

import numpy as np

from arena.contract import ActionGroup, EnvSpec, Observation, Task
from arena.remote.keymap import KeyMapping
from arena.remote.names import resolve_runs, runs_text
from arena.remote.translate import KeyTranslator

GROUPS = {"arm": ("j0", "j1", "j2"), "hand": ("grip",), "base": ("x", "y"), "other": ("y",)}
SPEC = EnvSpec(
    name="t/arm",
    embodiment="arm",
    cameras={"front": (8, 8)},
    state_groups={"arm": ("j0", "j1", "j2"), "hand": ("grip",)},
    action_groups=(ActionGroup("move", ("dx",), low=[-1], high=[1]),),
    tasks=(Task("t", "do it"),),
    max_episode_steps=5,
)


def test_joints_resolve_to_runs_of_one_group_each() -> None:
    runs, problems = resolve_runs("k", GROUPS, "state", "t/arm", "mapping m", joints=["arm.j2", "arm.j0", "grip"])
    assert problems == []
    assert [(g, None if c is None else c.tolist()) for g, c in runs] == [("arm", [2, 0]), ("hand", [0])]
    assert runs_text(runs, GROUPS) == "arm.j2, arm.j0 + hand.grip"


def test_unknown_and_ambiguous_names_are_problems_naming_the_valid_ones() -> None:
    _, problems = resolve_runs("k", GROUPS, "state", "t/arm", "mapping m", groups=["arm", "legs"])
    assert problems == [
        "k: mapping m reads state group(s) ['legs'], which env t/arm lacks "
        "(env state groups: arm(3)+hand(1)+base(2)+other(1))"
    ]
    _, problems = resolve_runs("k", GROUPS, "state", "t/arm", "mapping m", joints=["y", "arm.j9"])
    assert problems[0] == "k: mapping m: joint 'y' is ambiguous (base.y, other.y); write GROUP.ELEMENT"
    assert problems[1].startswith("k: mapping m reads joint 'arm.j9', an element of no env state group of t/arm")


def test_a_key_mapping_may_feed_a_state_key_from_single_joints() -> None:
    mapping = KeyMapping.from_dict(
        {"state": {"obs/state": {"joints": ["hand.grip", "arm.j1"], "size": 2}}, "prompt_key": "prompt"}, "m.toml"
    )
    t = KeyTranslator(mapping, SPEC)
    assert t.problems == []
    obs = Observation(
        images={},
        state={"arm": np.array([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]), "hand": np.array([[9.0], [8.0]])},
        instruction=["a", "b"],
        env_ids=np.arange(2),
    )
    native = t.encode(obs, [1])
    assert native[0]["obs/state"].tolist() == [8.0, 4.0] and native[0]["prompt"] == "b"
    back = t.decode_observation(native[0], reads_state=["arm", "hand"])
    assert back.state["arm"].tolist() == [[0.0, 4.0, 0.0]] and back.state["hand"].tolist() == [[8.0]]
    wrong = KeyMapping.from_dict({"state": {"obs/state": {"joints": ["arm.j1"], "size": 3}}}, "m.toml")
    assert KeyTranslator(wrong, SPEC).problems == ["obs/state: mapping m.toml expects shape (3,), env arm.j1 give (1,)"]
