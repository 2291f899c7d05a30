"""tune: Ray Tune + OptunaSearch over the algorithm YAML's search space -> best hyperparameters."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import Any

from rsc.config import Settings
from rsc.core.schema import TRAIN
from rsc.rl.algorithm import build_algorithm_config
from rsc.rl.envs import env_config
from rsc.rl.runtime import connect
from rsc.rl.spec import load_algorithm_spec, resolve_spec_path
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


def run(cfg: Settings, split_uri: str, scaler_uri: str) -> TuneResult:
    storage = Storage.from_settings(cfg.storage)
    best_params_uri = join(cfg.run_root, "tune", "best_params.json")
    trials_uri = join(cfg.run_root, "tune", "trials.parquet")
    if not cfg.tune.enabled:
        storage.write_json(best_params_uri, {"best_params": {}, "metric": None, "best_metric": None})
        log.info("tune: disabled; training with the algorithm config's own hyperparameters")
        return TuneResult(best_params_uri, {}, float("nan"), trials_uri, 0)
    spec = load_algorithm_spec(resolve_spec_path(cfg.train.algorithm_config), cfg.cluster.learner_overrides)
    environment = env_config(split_uri, scaler_uri, TRAIN, cfg.env, cfg.storage.s3_endpoint_url)
    config = build_algorithm_config(spec, {**environment, "eval_every": 1}, cfg.run.seed)
    connect(cfg.ray.address)
    storage_path = storage.local_path(join(cfg.run_root, "tune"))
    sweep = run_sweep(
        spec,
        config,
        str(storage_path or join(cfg.run_root, "tune")),
        name="sweep",
        seed=cfg.run.seed,
        num_samples=cfg.tune.num_samples,
        iterations=cfg.tune.iterations,
    )
    buffer = io.BytesIO()
    sweep.trials.to_parquet(buffer, index=False)
    storage.write_bytes(trials_uri, buffer.getvalue())
    storage.write_json(
        best_params_uri,
        {
            "best_params": sweep.best_params,
            "metric": spec.tune.metric,
            "best_metric": sweep.best_metric,
        },
    )
    log.info(
        "tune: %d trials, best %s=%.3f with %s",
        len(sweep.trials),
        spec.tune.metric,
        sweep.best_metric,
        sweep.best_params,
    )
    return TuneResult(best_params_uri, sweep.best_params, sweep.best_metric, trials_uri, len(sweep.trials))
