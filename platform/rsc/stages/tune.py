"""tune: Ray Tune + OptunaSearch over the algorithm YAML's search space -> best hyperparameters.

Writes ``tune/trials.parquet`` (every trial: sampled config, validation metrics),
``tune/trial_returns.parquet`` (each trial's validation bar returns, for the deflated Sharpe ratio and
PBO), ``tune/best_params.json``, and one MLflow parent run for the sweep with a child run per trial.
"""

from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from rsc.config import Settings
from rsc.core.schema import TRAIN
from rsc.registry.tracking import configure, log_sweep
from rsc.rl.algorithm import build_algorithm_config
from rsc.rl.envs import env_config
from rsc.rl.runtime import connect
from rsc.rl.spec import effective_env, load_algorithm_spec, resolve_spec_path
from rsc.rl.sweep import run_sweep
from rsc.storage import Storage, join

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TuneResult:
    best_params_uri: str
    best_params: dict[str, Any]
    best_metric: float
    trials_uri: str
    trials: int


def _write_parquet(storage: Storage, uri: str, frame: pd.DataFrame) -> None:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    storage.write_bytes(uri, buffer.getvalue())


def run(cfg: Settings, split_uri: str, scaler_uri: str, resume: bool = False) -> TuneResult:
    storage = Storage.from_settings(cfg.storage)
    best_params_uri = join(cfg.run_root, "tune", "best_params.json")
    trials_uri = join(cfg.run_root, "tune", "trials.parquet")
    if not cfg.tune.enabled:
        storage.write_json(best_params_uri, {"best_params": {}, "metric": None, "best_metric": None})
        log.info("tune: disabled; training with the algorithm config's own hyperparameters")
        return TuneResult(best_params_uri, {}, math.nan, trials_uri, 0)

    spec = load_algorithm_spec(resolve_spec_path(cfg.train.algorithm_config), cfg.cluster.learner_overrides)
    environment = env_config(split_uri, scaler_uri, TRAIN, effective_env(spec, cfg.env), cfg.storage)
    config = build_algorithm_config(spec, environment, cfg.run.seed)
    local_root = storage.local_path(join(cfg.run_root, "tune"))
    experiment_dir = Path(local_root or Path.home() / "ray_results" / cfg.run.name) / "sweep"
    connect(cfg.ray.address)
    sweep = run_sweep(
        spec,
        config,
        experiment_dir,
        seed=cfg.run.seed,
        num_samples=cfg.tune.num_samples,
        iterations=cfg.tune.iterations,
        resume=resume,
    )

    _write_parquet(storage, trials_uri, sweep.trials)
    _write_parquet(storage, join(cfg.run_root, "tune", "trial_returns.parquet"), sweep.returns)
    storage.write_json(
        best_params_uri,
        {
            "best_params": sweep.best_params,
            "metric": spec.tune.metric,
            "best_metric": sweep.best_metric,
            "trials": len(sweep.trials),
            "algorithm": spec.algorithm,
        },
    )
    configure(cfg.tracking_uri, cfg.registry.experiment, join(cfg.storage.root, "mlartifacts"))
    log_sweep(
        run_name=f"{cfg.run.name}-sweep",
        params={
            "algorithm": spec.algorithm,
            "search_space": {k: d.model_dump() for k, d in spec.search_space.items()},
        },
        trials=sweep.trials,
        best_params=sweep.best_params,
        metric=spec.tune.metric,
        best_metric=sweep.best_metric,
    )
    log.info(
        "tune: %d trials, best %s=%.3f with %s",
        len(sweep.trials),
        spec.tune.metric,
        sweep.best_metric,
        sweep.best_params,
    )
    return TuneResult(best_params_uri, sweep.best_params, sweep.best_metric, trials_uri, len(sweep.trials))
