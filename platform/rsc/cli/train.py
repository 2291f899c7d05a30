"""``rsc train`` and ``rsc tune``: the training steps alone, on a run whose data is already split.

They read the split written by ``rsc data split`` (or ``rsc run``) under the run root and use the
Ray cluster of ``ray.address`` (a local in-process Ray when unset).
"""

from __future__ import annotations

import argparse

from rsc.cli import SettingsLoader, add_settings_arguments
from rsc.config import ConfigError, Settings
from rsc.storage import Storage, join


def _split_inputs(cfg: Settings) -> tuple[str, str]:
    storage = Storage.from_settings(cfg.storage)
    split_uri, scaler_uri = join(cfg.run_root, "split"), join(cfg.run_root, "scaler.json")
    if not storage.exists(join(split_uri, "manifest.json")) or not storage.exists(scaler_uri):
        raise ConfigError(
            f"no split data under {cfg.run_root}: run `rsc data ingest`, `rsc data features` and "
            "`rsc data split` (or `rsc run`) with the same run.name and storage.root first"
        )
    return split_uri, scaler_uri


def cmd_train(args: argparse.Namespace, load: SettingsLoader) -> int:
    from rsc.stages import train

    cfg = load(args)
    split_uri, scaler_uri = _split_inputs(cfg)
    storage = Storage.from_settings(cfg.storage)
    best_params = join(cfg.run_root, "tune", "best_params.json")
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
        command.set_defaults(func=lambda args, f=func: f(args, load))
