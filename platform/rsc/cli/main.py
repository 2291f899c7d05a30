"""The ``rsc`` command: run, schedule, doctor, compile, submit, stage, data, train, tune, report, registry,
serve."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from rsc.cli import add_settings_arguments
from rsc.cli import data as data_commands
from rsc.cli import paper as paper_commands
from rsc.cli import registry as registry_commands
from rsc.cli import serve as serve_commands
from rsc.cli import train as train_commands
from rsc.config import ConfigError, load_settings
from rsc.config.loader import default_config_paths


def _split_args(items: list[str]) -> tuple[list[str], list[str]]:
    """Positional arguments: YAML files, then ``key=value`` overrides (in any order)."""
    overrides = [item for item in items if "=" in item]
    files = [item for item in items if "=" not in item]
    return files, overrides


def _settings(args: argparse.Namespace):
    files, overrides = _split_args(args.config)
    paths = files or default_config_paths(args.env)
    return load_settings(paths, overrides)


def _named_run(args: argparse.Namespace):
    """Settings of a command that works on an existing run: its latest execution (``rsc.launch.runs``)."""
    from rsc.launch.runs import latest_execution

    return latest_execution(_settings(args))


def cmd_run(args: argparse.Namespace) -> int:
    from rsc.launch.run import RunFailed, execute
    from rsc.system.processes import PortInUse, ProcessFailed

    try:
        execute(_settings(args), keep_serving=args.keep_serving, verbose=args.verbose)
    except (PortInUse, ProcessFailed, RunFailed) as error:
        print(f"rsc: {error}", file=sys.stderr)
        return 1
    return 0


def cmd_schedule(args: argparse.Namespace) -> int:
    from rsc.launch.run import execute
    from rsc.launch.schedule import parse_every, run_on_schedule

    every = parse_every(args.every)
    if _settings(args).run.id is not None:
        print(
            "rsc schedule: run.id is set, so every run would write over the last: leave it unset",
            file=sys.stderr,
        )
        return 2

    def run_once() -> str:
        return execute(_settings(args), verbose=args.verbose).settings.run.id or ""

    def report(tick) -> None:
        outcome = f"run {tick.run_id}" if tick.error is None else f"FAILED: {tick.error}"
        more = "" if args.times is not None and tick.number >= args.times else f"; the next in {args.every}"
        print(f"rsc schedule: #{tick.number} {outcome} ({tick.seconds:.0f} s){more}", flush=True)

    try:
        ticks = run_on_schedule(run_once, every, args.times, report)
    except KeyboardInterrupt:
        print("rsc schedule: stopped", file=sys.stderr)
        return 130
    return 1 if any(tick.error for tick in ticks) else 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from rsc.launch.doctor import render, run_checks

    checks = run_checks(_settings(args))
    print("\n".join(render(checks)))
    failed = [check.name for check in checks if check.status == "fail"]
    if failed:
        print(f"rsc doctor: {len(failed)} check(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    from pipelines.pipeline import compile_pipeline

    path = compile_pipeline(args.output)
    print(f"wrote {path}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from rsc.cli.report import rebuild

    args.config = [*args.config, f"run.name={args.run}"]
    try:
        result = rebuild(_named_run(args))
    except FileNotFoundError as error:
        print(f"rsc: {error}", file=sys.stderr)
        return 2
    print(f"wrote {result.report_uri} and {result.metrics_uri}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rsc", description="Reinforcement-learning trading policies on Ray."
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="debug logging; `rsc run` also streams every step's full output",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the whole DAG locally (KFP local runner), then paper-trade")
    add_settings_arguments(run)
    run.add_argument("--keep-serving", action="store_true", help="keep Ray and the endpoint up after the run")
    run.set_defaults(func=cmd_run)

    schedule = commands.add_parser("schedule", help="`rsc run` again every interval, each a new execution")
    add_settings_arguments(schedule)
    schedule.add_argument("--every", required=True, help="interval between run starts: 30s, 15m, 6h, 1d")
    schedule.add_argument("--times", type=int, help="stop after this many runs (default: until Ctrl-C)")
    schedule.set_defaults(func=cmd_schedule)

    doctor = commands.add_parser("doctor", help="check that this machine has what a run needs")
    add_settings_arguments(doctor)
    doctor.set_defaults(func=cmd_doctor)

    compile_ = commands.add_parser("compile", help="write the KFP pipeline YAML")
    compile_.add_argument("-o", "--output", default="pipeline.yaml", type=Path, help="output path")
    compile_.set_defaults(func=cmd_compile)

    data_commands.register(commands, _named_run)
    train_commands.register(commands, _named_run)
    paper_commands.register(commands, _named_run)
    registry_commands.register(commands, _settings)
    serve_commands.register(commands, _settings)

    from rsc.cli import stage, submit

    submit.add_parser(commands)
    stage.add_parser(commands)

    report = commands.add_parser("report", help="rebuild a run's report.html and metrics.json")
    report.add_argument("run", help="run name under the storage root")
    add_settings_arguments(report)
    report.set_defaults(func=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.func(args)
    except ConfigError as error:
        print(f"rsc: config error: {error}", file=sys.stderr)
        return 2
