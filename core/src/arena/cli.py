"""The ``arena`` command: eval, check, plugins, report, compare.

Flags of the chosen policy family, env family and scheduler are added to
``arena eval`` / ``arena check`` once ``--policy``, ``--env`` and
``--scheduler`` are known, so ``arena eval --policy gr00t --help`` shows the
GR00T client's flags.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from arena.config import config_from_namespace
from arena.errors import ArenaError
from arena.plugins import Plugins, load_plugins, parse_plugin_options
from arena.run import add_family_options, preparse_selection

log = logging.getLogger("arena")

__all__ = ["main"]

EPILOG = """examples:
  arena eval --policy random --env debug/reach --episodes 5
  arena eval --policy expert --env metaworld/mt10 --episodes 10 --num-envs 4
  arena check --policy gr00t --env metaworld/pick-place-v3 --host gpu-box
  arena plugins --json
  arena eval --policy random --env debug/suite --episodes 3 --videos 1 --output runs/rr
  arena report runs/rr
  arena compare runs/baseline runs/candidate
"""


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="no:NAME",
        help="block a plugin by name (repeatable); ARENA_PLUGINS=a,b restricts installed plugins",
    )
    parser.add_argument(
        "--log-level",
        default="WARNING",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging level (default: WARNING)",
    )


def _int(name: str, minimum: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    parse.__name__ = name
    return parse


def _selection(parser: argparse.ArgumentParser, with_run: bool) -> None:
    parser.add_argument("--policy", required=True, help="policy family (see `arena plugins`)")
    parser.add_argument("--env", required=True, help="env id FAMILY/ID, e.g. debug/reach or metaworld/mt10")
    parser.add_argument("--scheduler", default="chunked", help="action scheduler (default: chunked)")
    parser.add_argument(
        "--num-envs",
        type=_int("num-envs", 1),
        default=None,
        help="parallel env slots (default: 1; with --backend ray: --workers x --envs-per-worker)",
    )
    parser.add_argument(
        "--stages",
        type=_int("stages", 1),
        default=None,
        metavar="G",
        help="pipeline stages: the slots form G groups, and while one group's policy query is in flight "
        "the others step (default: the policy's suggestion, 1 in process, 2 for a remote server; "
        "outcomes do not depend on it)",
    )
    if not with_run:
        return
    parser.add_argument(
        "--episode-retries",
        type=_int("episode-retries", 0),
        default=2,
        metavar="R",
        help="re-runs of an episode whose env worker died or hung, with the same seed, before it is "
        "recorded as an error (default: 2)",
    )
    _backend_options(parser)
    parser.add_argument("--episodes", type=_int("episodes", 1), default=10, help="episodes per task (default: 10)")
    parser.add_argument(
        "--max-steps", type=_int("max-steps", 1), default=None, help="step limit per episode (default: the env's)"
    )
    parser.add_argument(
        "--seed", type=_int("seed", 0), default=0, help="run seed; episode seeds derive from it (default: 0)"
    )
    parser.add_argument("--output", default=None, help="run directory (default: runs/<timestamp>-<policy>-<env>)")
    parser.add_argument(
        "--resume", default=None, metavar="RUN_DIR", help="continue an interrupted run directory (same config)"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON instead of a table")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--videos",
        type=_int("videos", 0),
        default=0,
        metavar="K",
        help="record the first K episodes of each task as MP4 in RUN_DIR/videos (default: 0)",
    )
    parser.add_argument(
        "--video-camera", default=None, metavar="NAME", help="record only this camera (default: every camera)"
    )
    parser.add_argument(
        "--tracker",
        default=None,
        choices=["tensorboard", "wandb"],
        help="log per-episode metrics to TensorBoard (RUN_DIR/tensorboard) or Weights & Biases",
    )


def _seconds(name: str) -> Any:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}") from None
        if not value > 0 or value == float("inf"):
            raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
        return value

    parse.__name__ = name
    return parse


def _backend_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "backend", "where the env slots run: this host, or Ray env shards on one machine or a cluster (docs/ray.md)"
    )
    group.add_argument(
        "--backend",
        choices=["local", "ray"],
        default="local",
        help="local: this host (in process, or a worker process per slot); ray: --workers Ray actors of "
        "--envs-per-worker slots each, the policy here (default: local; ray needs arena-core[ray])",
    )
    group.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDR",
        help="join the Ray cluster at ADDR (e.g. 10.0.0.1:6379 or auto); default: start a local Ray on "
        "127.0.0.1 for the run and stop it at the end",
    )
    group.add_argument(
        "--workers", type=_int("workers", 1), default=None, metavar="W", help="Ray env shards (default: --num-envs)"
    )
    group.add_argument(
        "--envs-per-worker",
        type=_int("envs-per-worker", 1),
        default=None,
        metavar="K",
        help="env slots per shard, stepped in the shard's own process (default: 1)",
    )
    group.add_argument(
        "--worker-resources",
        default=None,
        metavar="JSON",
        help='Ray resources one shard asks for, merged over {"CPU": 1}: e.g. \'{"sim": 1}\' to pin shards to '
        'nodes started with --resources \'{"sim": N}\', \'{"CPU": 1, "GPU": 0.5}\' for GPU-batched sims',
    )
    group.add_argument(
        "--placement-timeout",
        type=_seconds("placement-timeout"),
        default=60.0,
        metavar="S",
        help="fail when a shard cannot be placed within S seconds (Ray would wait forever; default: 60)",
    )
    group.add_argument(
        "--shard-timeout",
        type=_seconds("shard-timeout"),
        default=300.0,
        metavar="S",
        help="a shard that does not answer a call within S seconds is replaced and its episodes re-run (default: 300)",
    )


def _build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(
        prog="arena",
        description="Evaluate robot policies closed loop in simulation.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    subs = {
        "eval": sub.add_parser(
            "eval",
            help="evaluate a policy on an env and write a run directory",
            description="Evaluate a policy on an env: --episodes per task, results in --output. "
            "Family flags appear once --policy/--env/--scheduler are given.",
        ),
        "check": sub.add_parser(
            "check",
            help="preflight: env spec vs policy expectations; non-zero exit on mismatch",
            description="Build the env and the policy, print what the env provides next to what the policy "
            "expects, and exit 1 on any mismatch.",
        ),
        "plugins": sub.add_parser("plugins", help="list installed plugins, their versions and hooks"),
        "report": sub.add_parser(
            "report",
            help="write a self-contained report.html for a run directory",
            description="Write RUN_DIR/report.html: success with 95%% intervals, per-task chart, episode "
            "lengths, failure reasons, config, versions and the recorded videos, all inlined.",
        ),
        "compare": sub.add_parser(
            "compare",
            help="per-task success of several runs side by side, each against the first",
            description="Compare runs task by task against the first (the baseline): difference in success "
            "rate and its significance (two-sided two-proportion z-test, Fisher's exact test when an expected "
            "count is below 5).",
        ),
    }
    _selection(subs["eval"], with_run=True)
    _selection(subs["check"], with_run=False)
    subs["plugins"].add_argument("--json", action="store_true", help="print as JSON")
    subs["report"].add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by arena eval")
    subs["report"].add_argument("--output", default=None, help="where to write the page (default: RUN_DIR/report.html)")
    subs["compare"].add_argument(
        "runs", nargs="+", metavar="RUN_DIR", help="run directories; the first is the baseline"
    )
    subs["compare"].add_argument("--json", action="store_true", help="print as JSON")
    subs["compare"].add_argument(
        "--alpha", type=float, default=0.05, help="significance level of the two-sided tests (default: 0.05)"
    )
    for p in subs.values():
        _common(p)
    return parser, subs


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, subs = _build_parser()
    known = preparse_selection(argv, "WARNING", "%(levelname)s %(name)s: %(message)s", command=True)
    if known.command not in subs:
        args = parser.parse_args(argv)  # prints help or the error
        parser.print_help()
        return 2
    try:
        plugins = load_plugins(blocked=parse_plugin_options(known.plugin or []))
        classes = (
            # the default scheduler's flags (--execution-horizon) exist without --scheduler too
            add_family_options(subs[known.command], plugins, known.policy, known.env, known.scheduler or "chunked")
            if known.command in ("eval", "check")
            else {}
        )
    except ArenaError as exc:
        if "-h" in argv or "--help" in argv:
            subs[known.command].print_help()
        print(f"arena: error: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    try:
        if args.command == "plugins":
            return _cmd_plugins(plugins, args)
        if args.command == "report":
            return _cmd_report(args)
        if args.command == "compare":
            return _cmd_compare(args)
        configs = {k: config_from_namespace(cls, args) for k, cls in classes.items()}
        if args.command == "check":
            from arena.check import run_check

            return run_check(plugins, args, configs)
        return _cmd_eval(plugins, args, configs)
    except ArenaError as exc:
        print(f"arena: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        out = getattr(args, "output", None) or getattr(args, "resume", None)
        hint = f" (continue with --resume {out})" if out else " (continue with --resume RUN_DIR)"
        print(f"arena: interrupted{hint}", file=sys.stderr)
        return 130


def _cmd_plugins(plugins: Plugins, args: argparse.Namespace) -> int:
    rows = [i.to_dict() for i in plugins.infos]
    provides: dict[str, list[str]] = {}
    for kind in ("policies", "envs", "schedulers", "translators"):
        try:
            reg = plugins.registry(kind)
        except ArenaError as exc:
            print(f"arena: error: {exc}", file=sys.stderr)
            return 2
        for entry in reg.entries():
            provides.setdefault(entry.owner.plugin, []).append(f"{reg.kind}:{entry.name}")
    for row in rows:
        row["provides"] = provides.get(row["name"], [])
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from arena.table import format_table

    table = [
        [
            r["name"],
            f"{r['distribution']} {r['version']}",
            ", ".join(r["hooks"]) or "-",
            ", ".join(r["provides"]) or "-",
        ]
        for r in rows
        if r["error"] is None
    ]
    print(format_table(["plugin", "distribution", "hooks", "provides"], table))
    for r in rows:
        if r["error"] is not None:
            print(f"FAILED {r['name']} ({r['distribution']} {r['version']}): {r['error']}")
    return 0


def _cmd_eval(plugins: Plugins, args: argparse.Namespace, configs: dict[str, Any]) -> int:
    from arena.api import evaluate
    from arena.backends import BackendConfig
    from arena.progress import Progress
    from arena.table import summary_table

    if args.output is None and args.resume is None:
        from arena.run import default_run_dir

        args.output = str(default_run_dir(args.policy, args.env))
    print(f"run directory: {args.resume or args.output}", file=sys.stderr)
    progress = Progress(enabled=not args.no_progress)
    try:
        summary = evaluate(
            args.policy,
            args.env,
            episodes=args.episodes,
            num_envs=args.num_envs,
            max_steps=args.max_steps,
            seed=args.seed,
            scheduler=args.scheduler,
            policy_config=configs.get("policy"),
            env_config=configs.get("env"),
            scheduler_config=configs.get("scheduler"),
            output=args.output,
            resume=args.resume,
            plugins=plugins,
            on_episode=progress.update,
            videos=args.videos,
            video_camera=args.video_camera,
            tracker=args.tracker,
            stages=args.stages,
            episode_retries=args.episode_retries,
            backend=BackendConfig(
                args.backend,
                args.ray_address,
                args.workers,
                args.envs_per_worker,
                args.worker_resources,
                placement_timeout_s=args.placement_timeout,
                shard_timeout_s=args.shard_timeout,
            ),
        )
    finally:
        progress.close()
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        print(summary_table(summary))
        print(f"results: {summary.run_dir}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from arena.report import write_report

    print(f"report: {write_report(args.run_dir, args.output)}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from arena.compare import compare_runs, comparison_table

    cmp = compare_runs(args.runs, alpha=args.alpha)
    print(json.dumps(cmp.to_dict(), indent=2) if args.json else comparison_table(cmp))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
