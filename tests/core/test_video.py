"""``--videos K``: MP4 per recorded episode and camera, streamed frame by frame, rendered only when recorded."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import imageio.v2 as iio
import numpy as np
import pytest
from arena_core_testlib import Greedy, eval_argv, read_records

import arena
import arena.evaluator
import arena.video
from arena.builtins.debug_env import DebugVectorEnv
from arena.cli import main
from arena.contract import Observation
from arena.errors import ConfigError
from arena.video import VideoRecorder, list_videos, parse_video_name, video_name


def _frames(path: Path) -> list[np.ndarray]:
    with iio.get_reader(str(path), format="FFMPEG") as reader:
        return [np.asarray(f) for f in reader]


def _start_position(seed: int) -> np.ndarray:
    """Where the debug env puts the point at reset (its documented use of the episode seed)."""
    return np.random.default_rng(seed).uniform(0.1, 0.3, size=2)


def test_k_videos_per_task_named_by_outcome_with_every_frame(tmp_path: Path, debug_envs: list[DebugVectorEnv]) -> None:
    run = tmp_path / "run"
    # episode 1 of each task crashes at step 3 (a failure); episodes 0 and 2 succeed
    arena.evaluate(
        Greedy,
        "debug/suite",
        episodes=3,
        num_envs=2,
        videos=2,
        output=run,
        env_config={"crash_episodes": [1], "image_size": 64},
    )
    records = {(r.task, r.episode_index): r for r in read_records(run)}
    files = sorted(p.name for p in (run / "videos").iterdir())
    expected = sorted(
        video_name(task, i, records[(task, i)].success, "top") for task in ("reach", "reach-far") for i in (0, 1)
    )
    assert files == expected
    assert "reach__ep0000__success__top.mp4" in files and "reach__ep0001__failure__top.mp4" in files
    for name in files:
        v = parse_video_name(name)
        assert v is not None
        rec = records[(v.task, v.episode_index)]
        frames = _frames(run / "videos" / name)
        assert len(frames) == rec.length + 1, name  # the reset frame, then one per step
        assert frames[0].shape == (64, 64, 3)
        # the first frame shows the point where this episode's seed put it (lossy codec: locate the red blob)
        red = (frames[0][..., 0].astype(int) > 150) & (frames[0][..., 1] < 100)
        rows, cols = np.nonzero(red)
        x, y = _start_position(rec.seed)
        assert abs(cols.mean() - x * 63) < 2.5 and abs(rows.mean() - y * 63) < 2.5, name

    # the policy needs no camera: exactly the recorded episodes' frames were rendered
    # (a step that raised renders nothing: the crashed episodes have one render fewer)
    recorded = [r for r in records.values() if r.episode_index < 2]
    assert sum(env.render_count() for env in debug_envs) == sum(r.length + 1 - int(r.error) for r in recorded)


def test_no_videos_renders_nothing_for_a_camera_free_policy(tmp_path: Path, debug_envs: list[DebugVectorEnv]) -> None:
    arena.evaluate(Greedy, "debug/suite", episodes=3, output=tmp_path / "run")
    assert sum(env.render_count() for env in debug_envs) == 0
    assert not (tmp_path / "run" / "videos").exists()


class _SpyWriter:
    """Counts frames handed to it; stores none."""

    appended = 0

    def __init__(self, path: Path, fps: float) -> None:
        self.path = path
        path.write_bytes(b"")

    def append_data(self, im: np.ndarray) -> None:
        assert im.dtype == np.uint8 and im.ndim == 3
        _SpyWriter.appended += 1

    def close(self) -> None:
        pass


def _arrays_held(obj: Any, seen: set[int] | None = None) -> int:
    """ndarrays reachable from ``obj`` through attributes, dicts, lists and tuples."""
    seen = seen if seen is not None else set()
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return 1
    if isinstance(obj, dict):
        return sum(_arrays_held(v, seen) for v in obj.values())
    if isinstance(obj, (list, tuple, set)):
        return sum(_arrays_held(v, seen) for v in obj)
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        return sum(_arrays_held(v, seen) for v in vars(obj).values())
    if hasattr(obj, "__attrs_attrs__"):
        return sum(_arrays_held(getattr(obj, a.name), seen) for a in obj.__attrs_attrs__)
    return 0


def test_frames_go_to_the_writer_one_by_one_and_none_are_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(arena.video, "ffmpeg_writer", _SpyWriter)
    _SpyWriter.appended = 0
    delivered = 0
    original = VideoRecorder.frame

    def frame(self: VideoRecorder, slot: int, episode: Any, observation: Observation) -> None:
        nonlocal delivered
        original(self, slot, episode, observation)
        delivered += 1
        assert _SpyWriter.appended == delivered  # this frame reached the writer before the next step
        assert _arrays_held(self) == 0  # nothing buffered in the recorder

    monkeypatch.setattr(VideoRecorder, "frame", frame)
    arena.evaluate("zero", "debug/reach", episodes=2, num_envs=2, videos=2, output=tmp_path / "run")
    assert delivered == 2 * 51  # two max-length episodes (50 steps) plus their reset frames


def test_memory_stays_flat_however_long_the_episode(tmp_path: Path) -> None:
    """A 1000-step episode at 64x64 is 12 MB of frames; recording it must not cost more memory than 100 steps."""

    def peak(steps: int) -> int:
        tracemalloc.start()
        try:
            arena.evaluate(
                "zero",
                "debug/reach",
                episodes=1,
                max_steps=steps,
                videos=1,
                env_config={"image_size": 64},
                output=tmp_path / f"run{steps}",
            )
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    peak(20)  # warm imports and caches
    short, long = peak(100), peak(1000)
    frames_bytes = 900 * 64 * 64 * 3
    assert long - short < frames_bytes / 8, (short, long)
    assert len(_frames(tmp_path / "run1000" / "videos" / "reach__ep0000__failure__top.mp4")) == 1001


def test_resume_keeps_recorded_videos_and_rerecords_the_rest(tmp_path: Path) -> None:
    run = tmp_path / "run"
    arena.evaluate(Greedy, "debug/reach", episodes=3, videos=2, output=run)
    ep0 = run / "videos" / "reach__ep0000__success__top.mp4"
    ep1 = run / "videos" / "reach__ep0001__success__top.mp4"
    before = (ep0.stat().st_mtime_ns, ep0.read_bytes())
    # simulate a kill: episodes 1 and 2 never got their lines; episode 1 left a finished video
    # with another outcome and an unfinished one
    lines = (run / "episodes.jsonl").read_text().splitlines(keepends=True)
    (run / "episodes.jsonl").write_text("".join(lines[:1]))
    ep1.rename(run / "videos" / "reach__ep0001__failure__top.mp4")
    (run / "videos" / "reach__ep0001__top.partial.mp4").write_bytes(b"\x00" * 10)

    arena.evaluate(Greedy, "debug/reach", episodes=3, videos=2, resume=run)
    assert (ep0.stat().st_mtime_ns, ep0.read_bytes()) == before
    assert sorted(p.name for p in (run / "videos").iterdir()) == [ep0.name, ep1.name]
    assert len(_frames(ep1)) == read_records(run)[1].length + 1


def test_cli_flags_and_a_chosen_camera(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    rc = main(eval_argv("random", "debug/suite", run, "--episodes", "2", "--videos", "1", "--video-camera", "top"))
    assert rc == 0
    assert [(v.task, v.episode_index, v.camera) for v in list_videos(run / "videos")] == [
        ("reach", 0, "top"),
        ("reach-far", 0, "top"),
    ]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["config"]["videos"] == 1 and summary["config"]["video_camera"] == "top"
    assert "videos" not in json.loads((run / "config.json").read_text())  # not part of the run's identity


def test_video_options_do_not_block_resume(tmp_path: Path) -> None:
    run = tmp_path / "run"
    arena.evaluate("random", "debug/reach", episodes=2, output=run)
    (run / "episodes.jsonl").write_text((run / "episodes.jsonl").read_text().splitlines(keepends=True)[0])
    summary = arena.evaluate("random", "debug/reach", episodes=2, resume=run, videos=2)
    assert summary.overall.episodes == 2
    assert [v.episode_index for v in list_videos(run / "videos")] == [1]  # episode 0 was done before


def test_unknown_camera_is_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    rc = main(eval_argv("random", "debug/reach", run, "--videos", "1", "--video-camera", "side"))
    assert rc == 2
    assert "--video-camera: env debug/reach has no camera 'side'; cameras: top" in capsys.readouterr().err
    assert not run.exists()
    with pytest.raises(ConfigError, match="--video-camera: give --videos K"):
        arena.evaluate("random", "debug/reach", video_camera="top", write=False)
    with pytest.raises(ConfigError, match="need write=True"):
        arena.evaluate("random", "debug/reach", videos=1, write=False)


def test_a_callers_frame_sink_still_gets_its_frames_next_to_the_videos(tmp_path: Path) -> None:
    class Counting(arena.evaluator.FrameSink):
        def __init__(self) -> None:
            self.frames: dict[int, int] = {}

        def wants(self, episode: Any) -> bool:
            return episode.index == 1

        def frame(self, slot: int, episode: Any, observation: Observation) -> None:
            self.frames[episode.index] = self.frames.get(episode.index, 0) + 1

    sink = Counting()
    run = tmp_path / "run"
    arena.evaluate(Greedy, "debug/reach", episodes=3, videos=1, frames=sink, output=run)
    records = {r.episode_index: r for r in read_records(run)}
    assert sink.frames == {1: records[1].length + 1}
    assert [v.episode_index for v in list_videos(run / "videos")] == [0]
    assert len(_frames(run / "videos" / video_name("reach", 0, records[0].success, "top"))) == records[0].length + 1
