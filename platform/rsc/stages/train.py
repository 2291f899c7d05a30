"""train: RLlib on the training part, validated on the validation part -> checkpoint + policy folder.

The run is logged to MLflow (parameters, one step of metrics per iteration, data hashes, code version,
config, checkpoint URI); the register stage later adds the evaluation and the model to the same run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from rsc.config import Settings
from rsc.core.features import feature_names
from rsc.core.observation import observation_size
from rsc.core.schema import POLICY_FILE, TRAIN
from rsc.data.features import indicator_refs
from rsc.monitor import sink_from_settings
from rsc.monitor.train import TrainMetrics
from rsc.registry.provenance import policy_tags
from rsc.registry.tracking import configure, log_training
from rsc.rl.algorithm import build_algorithm_config
from rsc.rl.envs import env_config
from rsc.rl.runtime import connect
from rsc.rl.spec import effective_env, load_algorithm_spec, resolve_spec_path
from rsc.rl.train import train_algorithm
from rsc.storage import Storage, join

log = logging.getLogger(__name__)
progress = logging.getLogger("rsc.progress.train")  # a line per iteration on the terminal of `rsc run`


@dataclass(frozen=True)
class TrainResult:
    model_uri: str
    checkpoint_uri: str
    best_iteration: int
    metrics: dict[str, float]
    resumed_from: list[int]
    run_id: str


def data_hashes(storage: Storage, run_root: str, split_uri: str) -> dict[str, str]:
    """Content hashes of the split and of the datasets it came from (tags ``rsc.data.<name>_sha256``)."""
    manifest = storage.read_manifest(split_uri)
    hashes = {"split": manifest["sha256"], **manifest.get("inputs", {})}
    features_uri = join(run_root, "features")
    if storage.exists(join(features_uri, "manifest.json")):
        features = storage.read_manifest(features_uri)
        if features["sha256"] == hashes.get("features"):
            hashes.update(features.get("inputs", {}))
    return {f"rsc.data.{name}_sha256": value for name, value in sorted(hashes.items())}


def _log_iteration(row: dict, metrics: TrainMetrics, iterations: int) -> None:
    metrics(row)
    sharpe = row.get("eval/sharpe")
    progress.info(
        "iteration %d/%d  episode return %s  validation Sharpe %s",
        row["iteration"],
        iterations,
        f"{row['episode_return_mean']:.4f}" if row["episode_return_mean"] is not None else "-",
        f"{sharpe:.3f}" if sharpe is not None else "-",
    )


def _tuned_params(storage: Storage, uri: str | None) -> dict:
    if not uri:
        return {}
    stored = storage.read_json(uri)
    if "best_params" not in stored:
        raise ValueError(f"{uri}: not a tune result (no 'best_params' key)")
    return stored["best_params"]


def run(
    cfg: Settings, split_uri: str, scaler_uri: str, best_params_uri: str | None = None, resume: bool = False
) -> TrainResult:
    storage = Storage.from_settings(cfg.storage)
    spec_path = resolve_spec_path(cfg.train.algorithm_config)
    spec = load_algorithm_spec(spec_path, cfg.cluster.learner_overrides)  # GPU learners when gpus > 0
    env = effective_env(spec, cfg.env)
    tuned = _tuned_params(storage, best_params_uri)
    environment = env_config(split_uri, scaler_uri, TRAIN, env, cfg.storage, eval_every=cfg.train.eval_every)
    config = build_algorithm_config(spec, environment, cfg.run.seed, tuned)
    scaler = storage.read_json(scaler_uri)
    obs_size = observation_size(env.window, len(scaler["columns"]))

    connect(cfg.ray.address)
    metrics = TrainMetrics(sink_from_settings(cfg.monitor, "rsc-train"), {"algorithm": spec.algorithm})
    model_uri = join(cfg.run_root, "model")
    iterations = cfg.train.iterations or spec.stop.training_iteration
    result = train_algorithm(
        config,
        iterations,
        model_uri,
        storage,
        obs_size,
        metric=cfg.train.metric,
        checkpoint_every=cfg.train.checkpoint_every,
        resume=resume,
        on_iteration=lambda row: _log_iteration(row, metrics, iterations),
    )
    storage.write_json(
        join(model_uri, POLICY_FILE),
        {
            "algorithm": spec.algorithm,
            "algorithm_config": str(spec_path.name),
            "hyperparameters": {**spec.training, **tuned},
            "indicators": [ref.to_dict() for ref in indicator_refs(cfg.features)],
            "feature_names": feature_names(indicator_refs(cfg.features)),
            "window": env.window,
            "positions": list(env.positions),
            "observation_size": obs_size,
            "scaler": scaler,
            "env": env.model_dump(mode="json"),
            "best_iteration": result.best_iteration,
            "validation": result.best_metrics,
            "inputs": {"split": storage.read_manifest(split_uri)["sha256"]},
        },
    )
    configure(cfg.tracking_uri, cfg.registry.experiment, join(cfg.storage.root, "mlartifacts"))
    run_id = log_training(
        run_name=cfg.run.label,
        params={
            "algorithm": spec.algorithm,
            "algorithm_config": spec_path.name,
            "hyperparameters": {**spec.training, **tuned},
            "iterations": cfg.train.iterations or spec.stop.training_iteration,
            "seed": cfg.run.seed,
            "window": env.window,
        },
        history=result.history,
        tags={
            **policy_tags(
                cfg.run.label, model_uri, result.checkpoint_uri, data_hashes(storage, cfg.run_root, split_uri)
            ),
            "rsc.best_iteration": str(result.best_iteration),
        },
        config=cfg.model_dump(mode="json"),
    )
    log.info(
        "train: best iteration %d %s (MLflow run %s)", result.best_iteration, result.best_metrics, run_id
    )
    return TrainResult(
        model_uri,
        result.checkpoint_uri,
        result.best_iteration,
        result.best_metrics,
        result.resumed_from,
        run_id,
    )
