"""``rsc train`` and ``rsc tune``: the training steps alone, on a run whose data is already split.

They read the split written by ``rsc data split`` (or ``rsc run``) under the run root and use the
Ray cluster of ``ray.address`` (a local in-process Ray when unset).
"""

from __future__ import annotations

import argparse

from rsc.cli import SettingsLoader, add_settings_arguments
from rsc.config import ConfigError, Settings
from rsc.storage import Storage, join
from rsc.storage.layout import RunLayout


def _split_inputs(cfg: Settings) -> tuple[str, str]:
    storage = Storage.from_settings(cfg.storage)
    layout = RunLayout(cfg.run_root)
    split_uri, scaler_uri = layout.split, layout.scaler
    if not storage.exists(join(split_uri, "manifest.json")) or not storage.exists(scaler_uri):
        raise ConfigError(
            f"no split data under {cfg.run_root}: run `rsc data ingest`, `rsc data features` and "
            "`rsc data split` (or `rsc run`) with the same run.name and storage.root first"
        )
    return split_uri, scaler_uri


def print_plan(cfg: Settings, best_params: str | None) -> None:
    """The resolved training config, each value with where it came from (``rsc train --dry-run``)."""
    from rich.console import Console
    from rich.table import Table

    from rsc.rl.plan import resolve_plan
    from rsc.storage.layout import read_tune_outcome

    storage = Storage.from_settings(cfg.storage)
    tuned = read_tune_outcome(storage, best_params).best_params if best_params else {}
    plan = resolve_plan(cfg, tuned)
    table = Table(title=f"Training plan of {cfg.run.label} ({plan.spec_path})")
    for column in ("key", "value", "from"):
        table.add_column(column)
    for row in plan.table():
        table.add_row(*row)
    Console(width=140).print(table)


def cmd_train(args: argparse.Namespace, load: SettingsLoader) -> int:
    from rsc.stages import train

    cfg = load(args)
    if args.dry_run:
        best_params = RunLayout(cfg.run_root).best_params
        print_plan(cfg, best_params if Storage.from_settings(cfg.storage).exists(best_params) else None)
        return 0
    split_uri, scaler_uri = _split_inputs(cfg)
    storage = Storage.from_settings(cfg.storage)
    best_params = RunLayout(cfg.run_root).best_params
    result = train.run(
        cfg, split_uri, scaler_uri, best_params if storage.exists(best_params) else None, resume=args.resume
    )
    resumed = f", resumed from iteration(s) {result.resumed_from}" if result.resumed_from else ""
    print(f"best iteration {result.best_iteration} {result.metrics}{resumed}; model at {result.model_uri}")
    return 0


def cmd_tune(args: argparse.Namespace, load: SettingsLoader) -> int:
    from rsc.stages import tune

    cfg = load(args)
    split_uri, scaler_uri = _split_inputs(cfg)
    result = tune.run(cfg, split_uri, scaler_uri, resume=args.resume)
    print(f"{result.trials} trials; best {result.best_metric:.4f} with {result.best_params}")
    print(f"trials table: {result.trials_uri}; best params: {result.best_params_uri}")
    return 0


def register(commands: argparse._SubParsersAction, load: SettingsLoader) -> None:
    for name, func, text in (
        ("train", cmd_train, "train the configured RLlib algorithm on the run's split data"),
        ("tune", cmd_tune, "search hyperparameters with Ray Tune (Optuna + ASHA) on the run's split data"),
    ):
        command = commands.add_parser(name, help=text)
        add_settings_arguments(command)
        command.add_argument("--resume", action="store_true", help="continue an interrupted run")
        if name == "train":
            command.add_argument(
                "--dry-run",
                action="store_true",
                help="print the resolved training config and where each value came from",
            )
        command.set_defaults(func=lambda args, f=func: f(args, load))
