"""What observers are told about a run (``arena_run_start`` and friends); imported by the hook specs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from arena.contract import EnvSpec

__all__ = ["RunInfo"]


@attrs.define
class RunInfo:
    """What observers get about a run (``arena_run_start`` and friends)."""

    run_dir: Path | None
    config: dict[str, Any]
    env_spec: EnvSpec
    episodes_planned: int
    episodes_done_before: int = 0
