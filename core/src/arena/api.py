"""``arena.evaluate``: one evaluation, from names to a written run directory and a Summary."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from arena.assembly import RunAssembly
from arena.backends import BackendConfig, backend_stages
from arena.compat import check_compat
from arena.config import config_to_dict
from arena.errors import ConfigError
from arena.evaluator import Evaluator, FrameSink, check_stages
from arena.plugins import Plugins
from arena.results import EpisodeRecord, RunDir, Summary, summarize
from arena.run import NON_IDENTITY_KEYS, default_run_dir
from arena.runinfo import RunInfo
from arena.video import FrameSinks, VideoRecorder, check_video_options, make_recorder

log = logging.getLogger(__name__)

__all__ = ["evaluate"]


def _positive(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"--{name.replace('_', '-')}: expected an integer >= {minimum}, got {value!r}")
    return value


def evaluate(
    policy: Any,
    env: str,
    *,
    episodes: int = 10,
    num_envs: int | None = None,
    max_steps: int | None = None,
    seed: int = 0,
    scheduler: str = "chunked",
    policy_config: Any = None,
    env_config: Any = None,
    scheduler_config: Any = None,
    output: str | Path | None = None,
    resume: str | Path | None = None,
    write: bool = True,
    plugins: Plugins | None = None,
    on_episode: Callable[[EpisodeRecord, int, int], None] | None = None,
    frames: FrameSink | None = None,
    videos: int = 0,
    video_camera: str | None = None,
    tracker: str | None = None,
    stages: int | None = None,
    episode_retries: int = 2,
    backend: str | BackendConfig = "local",
    ray_address: str | None = None,
    workers: int | None = None,
    envs_per_worker: int | None = None,
    worker_resources: str | Mapping[str, float] | None = None,
) -> Summary:
    """Evaluate ``policy`` on ``env`` and return the summary (also written to the run directory).

    ``policy`` is a registered family name (``"random"``), a Policy subclass,
    or a factory ``(env_spec, num_envs) -> Policy`` (for use inside training
    loops). ``*_config`` are config instances or mappings of their fields.
    ``resume`` continues an interrupted run directory: recorded episodes are
    kept, the missing ones run with the seeds they would have had.
    ``on_episode(record, done, total)`` is called as each episode ends.
    With ``write=False`` nothing is written to disk.
    ``videos=K`` records the first K episodes of each task as MP4 under
    ``RUN_DIR/videos`` (every camera, or ``video_camera``); ``tracker``
    (``"tensorboard"``, ``"wandb"``) logs per-episode metrics through the
    built-in ``trackers`` observer. Neither is part of the run's identity.
    ``stages=G`` splits the slots into G pipeline groups: while one group's
    policy query is in flight the others step (default: what the policy
    suggests, 1 in process and 2 for remote servers). ``episode_retries``:
    how often an episode lost to a dead or hung worker is re-run before it
    is recorded as an error. Neither changes outcomes, so neither is part
    of the run's identity either (a run started with one resumes with another).

    ``backend="ray"`` runs the slots in ``workers`` Ray actors of
    ``envs_per_worker`` slots each (``num_envs`` is then their product; give
    either), placed with ``worker_resources`` (default ``{"CPU": 1}``), on a
    local Ray started for the run or on the cluster at ``ray_address``; see
    docs/ray.md. The backend is not part of the run's identity either.
    ``num_envs`` defaults to 1 slot on the local backend.
    """
    _positive("episodes", episodes)
    if num_envs is not None:
        _positive("num_envs", num_envs)
    if isinstance(backend, BackendConfig):
        if any(v is not None for v in (ray_address, workers, envs_per_worker, worker_resources)):
            raise ConfigError("give the ray options inside the BackendConfig, not beside it")
        back = backend
    else:
        back = BackendConfig(backend, ray_address, workers, envs_per_worker, worker_resources)
    back.validate()
    num_envs, _, _ = back.layout(num_envs)
    if max_steps is not None:
        _positive("max_steps", max_steps)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"--seed: expected an integer >= 0, got {seed!r}")
    if resume is not None and output is not None and Path(output) != Path(resume):
        raise ConfigError(f"--output {output} and --resume {resume} name different directories; give one")
    _positive("videos", videos, minimum=0)
    if video_camera is not None and not videos:
        raise ConfigError("--video-camera: give --videos K too (how many episodes per task to record)")
    if videos and not write:
        raise ConfigError("--videos: videos are written to the run directory; they need write=True")
    if stages is not None and (isinstance(stages, bool) or not isinstance(stages, int) or stages < 1):
        raise ConfigError(f"--stages: expected an integer >= 1, got {stages!r}")
    _positive("episode_retries", episode_retries, minimum=0)
    if stages is not None:
        backend_stages(stages, 1, back, num_envs)  # a bad grouping fails before Ray starts
    assembly = RunAssembly(plugins)
    with assembly.scope():
        return _evaluate(
            assembly, policy, env, episodes, num_envs, max_steps, seed, scheduler, policy_config, env_config,
            scheduler_config, output, resume, write, on_episode, frames, videos, video_camera, tracker, stages,
            episode_retries, back,
        )  # fmt: skip


def _evaluate(
    assembly: RunAssembly,
    policy: Any,
    env: str,
    episodes: int,
    num_envs: int,
    max_steps: int | None,
    seed: int,
    scheduler: str,
    policy_config: Any,
    env_config: Any,
    scheduler_config: Any,
    output: str | Path | None,
    resume: str | Path | None,
    write: bool,
    on_episode: Callable[[EpisodeRecord, int, int], None] | None,
    frames: FrameSink | None,
    videos: int,
    video_camera: str | None,
    tracker: str | None,
    stages: int | None,
    episode_retries: int,
    backend: BackendConfig,
) -> Summary:
    plugins = assembly.plugins
    if tracker is not None:
        from arena.builtins.trackers import check_tracker

        check_tracker(tracker, plugins, has_run_dir=write)
    plugins.schedulers.get(scheduler)  # an unknown scheduler fails before any env is built

    vec_env, env_cfg = assembly.env(env, env_config, num_envs, backend)
    run_dir: RunDir | None = None
    recorder: VideoRecorder | None = None
    try:
        spec = vec_env.spec
        pol, policy_name, pol_cfg = assembly.policy(policy, policy_config, spec, num_envs)
        with pol:
            desc = pol.describe()
            check_compat(spec, desc)
            built = assembly.scheduler(scheduler, scheduler_config, num_envs, spec, desc)
            sched, sched_config = built.scheduler, built.config
            n_stages = assembly.stages(stages, desc, num_envs, backend)
            check_stages(n_stages, num_envs, sched)
            steps = max_steps or spec.max_episode_steps
            config = {
                "policy": policy_name,
                "policy_config": config_to_dict(pol_cfg),
                "env": env,
                "env_config": config_to_dict(env_cfg),
                "scheduler": scheduler,
                "scheduler_config": {
                    "execution_horizon": getattr(sched, "execution_horizon", None),
                    **_cfg(sched_config),
                },
                "action_horizon": desc.action_horizon,
                "episodes": episodes,
                "max_steps": steps,
                "seed": seed,
                "num_envs": num_envs,
                "videos": videos,
                "video_camera": video_camera,
                "tracker": tracker,
                "stages": n_stages,
                "episode_retries": episode_retries,
                "backend": backend.to_dict(num_envs),
            }
            plan = assembly.plan(spec, episodes, seed)
            previous: list[EpisodeRecord] = []
            if write:
                path = (
                    Path(resume)
                    if resume is not None
                    else Path(output)
                    if output
                    else default_run_dir(policy_name, env)
                )
                if videos:
                    check_video_options(spec, video_camera)
                run_dir = RunDir(path)
                identity = {k: v for k, v in config.items() if k not in NON_IDENTITY_KEYS}
                identity["policy_config"] = config_to_dict(pol_cfg, identity=True)
                identity["env_config"] = config_to_dict(env_cfg, identity=True)
                run_dir.create(identity, resume=resume is not None)
                if resume is not None:
                    planned = {(e.task, e.index): e.seed for e in plan}
                    previous = []
                    for r in run_dir.load_records():
                        if planned.get((r.task, r.episode_index)) == r.seed:
                            previous.append(r)
                        else:
                            log.warning(
                                "resume: %s holds episode %s #%d (seed %d), which is not in this run's plan; "
                                "it is left out of the results",
                                run_dir.episodes_path, r.task, r.episode_index, r.seed,
                            )  # fmt: skip
                    done = {(r.task, r.episode_index) for r in previous}
                    plan = [e for e in plan if (e.task, e.index) not in done]
                    log.info("resuming %s: %d episodes recorded, %d to run", path, len(previous), len(plan))
                if videos:
                    recorder = make_recorder(run_dir.path, spec, videos, video_camera)
                    frames = FrameSinks([frames, recorder]) if frames is not None else recorder
            info = RunInfo(
                run_dir=run_dir.path if run_dir else None,
                config=config,
                env_spec=spec,
                episodes_planned=len(plan) + len(previous),
                episodes_done_before=len(previous),
            )
            records = list(previous)
            total = info.episodes_planned

            def ended(record: EpisodeRecord) -> None:
                if run_dir is not None:
                    run_dir.append(record)
                records.append(record)
                plugins.notify("arena_episode_end", run=info, record=record)
                if on_episode is not None:
                    on_episode(record, len(records), total)

            plugins.notify("arena_run_start", run=info)
            evaluator = Evaluator(
                vec_env,
                pol,
                sched,
                plan,
                steps,
                ended,
                policy_uses_cameras=bool(desc.cameras),
                frames=frames,
                stages=n_stages,
                episode_retries=episode_retries,
            )
            t0 = time.perf_counter()
            evaluator.run()
            totals = {
                "env_steps": evaluator.total_steps,
                "renders": vec_env.render_count(),
                "wall_s": round(time.perf_counter() - t0, 3),
                "scene_builds": evaluator.rebuilds,
                "episodes_lost": evaluator.ledger.lost,
            }
            if backend.name == "ray":
                totals["shards_replaced"] = getattr(vec_env, "replaced", 0)
            summary = summarize(
                records,
                [t.name for t in spec.tasks],
                config,
                plugins.versions(),
                success_rule=spec.success_rule,
                run_dir=str(run_dir.path) if run_dir else None,
                totals=totals,
            )
            if run_dir is not None:
                run_dir.write_summary(summary)
            plugins.notify("arena_run_end", run=info, summary=summary)
            return summary
    finally:
        if recorder is not None:
            recorder.close()
        if run_dir is not None:
            run_dir.close()
        vec_env.close()


def _cfg(config: Any) -> dict[str, Any]:
    return {k: v for k, v in config_to_dict(config).items() if k != "execution_horizon"}
