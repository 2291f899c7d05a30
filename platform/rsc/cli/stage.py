"""``rsc stage NAME``: run one DAG stage in this process and print its result as JSON.

This is the entrypoint remote launchers submit (``rsc.launch.stages.stage_command``).
"""

from __future__ import annotations

import argparse
import json

from rsc.launch.stages import STAGE_INPUTS, run_stage


def _input(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--input {text!r} is not of the form name=uri")
    return key, value


def cmd_stage(args: argparse.Namespace) -> int:
    from rsc.launch.entry import settings_from_json
    from rsc.storage import Storage

    cfg = settings_from_json(args.settings_json)
    result = run_stage(args.name, cfg, dict(args.input))
    if args.result_uri:
        Storage.from_settings(cfg.storage).write_json(args.result_uri, result)
    print(json.dumps(result))
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``rsc stage`` (used by launchers rather than typed by people)."""
    stage = commands.add_parser("stage", help="run one DAG stage in this process (launcher entrypoint)")
    stage.add_argument("name", choices=list(STAGE_INPUTS), help="stage to run")
    stage.add_argument("--settings-json", required=True, help="the run's resolved settings as JSON")
    stage.add_argument(
        "--input", action="append", default=[], type=_input, metavar="NAME=URI", help="a stage input"
    )
    stage.add_argument("--result-uri", help="also write the result JSON here (file:// or s3://)")
    stage.set_defaults(func=cmd_stage)
