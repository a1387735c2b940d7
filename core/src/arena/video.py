"""Episode videos: a FrameSink that streams the frames of chosen episodes to MP4.

Each frame is handed to an ffmpeg process (imageio's ffmpeg plugin) as soon
as it is rendered, and nothing keeps it afterwards, so memory stays flat
however long the episode. The evaluator renders images only for episodes the
sink wants (plus what the policy needs), so unrecorded episodes cost nothing.

A video is written under a temporary name and renamed when the episode ends,
once its outcome is known: ``videos/<task>__ep0003__success__<camera>.mp4``.
A run killed mid-episode leaves only a ``.partial.mp4`` file, which the next
``--resume`` removes before re-running that episode.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import attrs
import numpy as np

from arena.arrays import to_numpy
from arena.contract import EnvSpec, Observation
from arena.env import EpisodeSpec
from arena.errors import ConfigError
from arena.evaluator import FrameSink
from arena.results import EpisodeRecord

log = logging.getLogger(__name__)

__all__ = [
    "VIDEO_DIR",
    "VideoFile",
    "VideoRecorder",
    "FrameSinks",
    "video_name",
    "parse_video_name",
    "list_videos",
    "make_recorder",
    "check_video_options",
]

VIDEO_DIR = "videos"
PARTIAL_SUFFIX = ".partial.mp4"
OUTCOMES = ("success", "failure")
DEFAULT_FPS = 10.0
INSTALL_HINT = 'pip install "arena-core[video]"'

_NAME = re.compile(r"^(?P<task>.+)__ep(?P<index>\d+)__(?P<outcome>success|failure)__(?P<camera>.+)\.mp4$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class Writer(Protocol):
    def append_data(self, im: np.ndarray) -> None: ...

    def close(self) -> None: ...


WriterFactory = Callable[[Path, float], Writer]


def safe_name(text: str) -> str:
    """``text`` usable in a file name (task and camera names are free-form)."""
    return _UNSAFE.sub("_", text).strip("_") or "_"


def video_name(task: str, episode_index: int, success: bool, camera: str) -> str:
    outcome = OUTCOMES[0] if success else OUTCOMES[1]
    return f"{safe_name(task)}__ep{episode_index:04d}__{outcome}__{safe_name(camera)}.mp4"


@attrs.frozen
class VideoFile:
    """A finished video, as its name describes it (``task`` is the file-safe form)."""

    path: Path
    task: str
    episode_index: int
    success: bool
    camera: str


def parse_video_name(path: str | Path) -> VideoFile | None:
    p = Path(path)
    m = _NAME.match(p.name)
    if m is None:
        return None
    return VideoFile(p, m["task"], int(m["index"]), m["outcome"] == "success", m["camera"])


def list_videos(directory: str | Path) -> list[VideoFile]:
    """Finished videos in ``directory`` (partial files and strangers ignored), by task, episode, camera."""
    d = Path(directory)
    if not d.is_dir():
        return []
    found = [v for v in (parse_video_name(p) for p in d.iterdir()) if v is not None]
    return sorted(found, key=lambda v: (v.task, v.episode_index, v.camera))


def ffmpeg_writer(path: Path, fps: float) -> Writer:
    """An H.264 MP4 writer fed one frame at a time (browsers play it; yuv420p needs even sizes)."""
    try:
        import imageio.v2 as iio
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ConfigError(f"--videos needs imageio and imageio-ffmpeg: {INSTALL_HINT}") from exc
    return iio.get_writer(
        str(path),
        format="FFMPEG",
        mode="I",
        fps=fps,
        codec="libx264",
        pixelformat="yuv420p",
        macro_block_size=2,
        ffmpeg_log_level="error",
        output_params=["-movflags", "+faststart"],
    )


def _check_video_deps() -> None:
    try:
        import imageio.v2  # noqa: F401
        import imageio_ffmpeg

        imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as exc:
        raise ConfigError(f"--videos needs imageio and imageio-ffmpeg ({exc}): {INSTALL_HINT}") from exc


@attrs.define
class _Recording:
    episode: EpisodeSpec
    writers: dict[str, Writer]
    partials: dict[str, Path]
    frames: int = 0


class VideoRecorder(FrameSink):
    """Records the first ``per_task`` episodes of every task, one MP4 per camera."""

    def __init__(
        self,
        directory: str | Path,
        per_task: int,
        cameras: Sequence[str],
        fps: float = DEFAULT_FPS,
        writer_factory: WriterFactory | None = None,
    ) -> None:
        if not cameras:
            raise ConfigError("--videos: no camera to record")
        self.directory = Path(directory)
        self.per_task = per_task
        self.cameras = tuple(cameras)
        self.fps = fps
        self._open_writer = writer_factory or ffmpeg_writer
        self._recordings: dict[int, _Recording] = {}
        #: finished videos of this process, in the order they ended
        self.written: list[VideoFile] = []
        self.directory.mkdir(parents=True, exist_ok=True)
        self._remove_partials()

    def _remove_partials(self) -> None:
        """Leftovers of a killed run: their episodes were not recorded as ended, so they run again."""
        for p in self.directory.glob(f"*{PARTIAL_SUFFIX}"):
            log.info("removing the unfinished video %s", p)
            p.unlink(missing_ok=True)

    def wants(self, episode: EpisodeSpec) -> bool:
        return episode.index < self.per_task

    def frame(self, slot: int, episode: EpisodeSpec, observation: Observation) -> None:
        rec = self._recordings.get(slot)
        if rec is None or rec.episode != episode:
            if rec is not None:  # the previous episode of this slot never ended (cannot happen in the loop)
                self._abort(rec)
            rec = self._begin(episode)
            self._recordings[slot] = rec
        for camera, writer in rec.writers.items():
            writer.append_data(_frame(observation.images[camera], slot))
        rec.frames += 1

    def _begin(self, episode: EpisodeSpec) -> _Recording:
        writers: dict[str, Writer] = {}
        partials: dict[str, Path] = {}
        stem = f"{safe_name(episode.task)}__ep{episode.index:04d}"
        for camera in self.cameras:
            partial = self.directory / f"{stem}__{safe_name(camera)}{PARTIAL_SUFFIX}"
            partials[camera] = partial
            writers[camera] = self._open_writer(partial, self.fps)
        return _Recording(episode, writers, partials)

    def end(self, slot: int, episode: EpisodeSpec, record: EpisodeRecord) -> None:
        rec = self._recordings.pop(slot, None)
        if rec is None:  # no frame was ever delivered (the env failed at reset)
            return
        for writer in rec.writers.values():
            writer.close()
        for camera, partial in rec.partials.items():
            final = self.directory / video_name(episode.task, episode.index, record.success, camera)
            # an earlier attempt of this episode (killed before its line was written) may have
            # left a finished video with the other outcome: one file per episode and camera
            stale = self.directory / video_name(episode.task, episode.index, not record.success, camera)
            stale.unlink(missing_ok=True)
            os.replace(partial, final)
            self.written.append(
                VideoFile(final, safe_name(episode.task), episode.index, record.success, safe_name(camera))
            )
            log.debug("video %s: %d frames", final, rec.frames)

    def discard(self, slot: int, episode: EpisodeSpec) -> None:
        """The episode was lost (its worker died) and runs again: its partial video goes."""
        rec = self._recordings.pop(slot, None)
        if rec is not None:
            self._abort(rec)

    def _abort(self, rec: _Recording) -> None:
        for writer in rec.writers.values():
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - cleanup must not hide the error that stopped the run
                log.exception("closing an unfinished video failed")
        for partial in rec.partials.values():
            partial.unlink(missing_ok=True)

    def close(self) -> None:
        """Stop recordings the run did not finish (it was interrupted); their partial files go."""
        while self._recordings:
            _, rec = self._recordings.popitem()
            self._abort(rec)


class FrameSinks(FrameSink):
    """Several sinks as one (a caller's own sink next to the video recorder)."""

    def __init__(self, sinks: Iterable[FrameSink]) -> None:
        self.sinks = list(sinks)
        self._wanted: dict[tuple[str, int], list[FrameSink]] = {}

    def wants(self, episode: EpisodeSpec) -> bool:
        wanted = [s for s in self.sinks if s.wants(episode)]
        self._wanted[(episode.task, episode.index)] = wanted
        return bool(wanted)

    def frame(self, slot: int, episode: EpisodeSpec, observation: Observation) -> None:
        for s in self._wanted.get((episode.task, episode.index), ()):
            s.frame(slot, episode, observation)

    def end(self, slot: int, episode: EpisodeSpec, record: EpisodeRecord) -> None:
        for s in self._wanted.pop((episode.task, episode.index), ()):
            s.end(slot, episode, record)

    def discard(self, slot: int, episode: EpisodeSpec) -> None:
        for s in self._wanted.pop((episode.task, episode.index), ()):
            s.discard(slot, episode)


def _frame(images: Any, slot: int) -> np.ndarray:
    """Row ``slot`` as a contiguous uint8 HxWx3 array (moved off the GPU if needed)."""
    img = to_numpy(images[slot])
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img)


def check_video_options(spec: EnvSpec, camera: str | None = None) -> None:
    """Refuse ``--videos`` / ``--video-camera`` the env cannot serve, before anything is written."""
    if not spec.cameras:
        raise ConfigError(f"--videos: env {spec.name} has no cameras to record")
    if camera is not None and camera not in spec.cameras:
        raise ConfigError(
            f"--video-camera: env {spec.name} has no camera {camera!r}; cameras: {', '.join(spec.cameras)}"
        )
    _check_video_deps()


def make_recorder(run_dir: str | Path, spec: EnvSpec, per_task: int, camera: str | None = None) -> VideoRecorder:
    """The recorder ``--videos K [--video-camera NAME]`` asks for, checked against the env's cameras."""
    check_video_options(spec, camera)
    cameras = [camera] if camera is not None else list(spec.cameras)
    fps = spec.control_hz if spec.control_hz > 0 else DEFAULT_FPS
    return VideoRecorder(Path(run_dir) / VIDEO_DIR, per_task, cameras, fps=fps)
