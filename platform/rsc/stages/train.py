"""train: RLlib on the training part, validated on the validation part -> checkpoint + policy folder.

The run is logged to MLflow (parameters, one step of metrics per iteration, data hashes, code version,
config, checkpoint URI); the register stage later adds the evaluation and the model to the same run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from rsc.config import Settings
from rsc.core.artifacts import SearchRecord
from rsc.core.policy_spec import PolicySpec, PortfolioSpec, RecurrentSpec, UniverseSpec
from rsc.core.schema import TRAIN
from rsc.data.features import indicator_refs
from rsc.monitor import sink_from_settings
from rsc.monitor.drift import drift_reference
from rsc.monitor.train import TrainMetrics
from rsc.registry.provenance import policy_tags
from rsc.registry.tracking import configure, log_training
from rsc.rl.algorithm import build_algorithm_config
from rsc.rl.envs import env_config, make_env
from rsc.rl.plan import resolve_plan
from rsc.rl.runtime import connect
from rsc.rl.train import train_algorithm
from rsc.storage import Storage, join
from rsc.storage.layout import RunLayout, read_scaler, read_search, read_tune_outcome, write_artifact

log = logging.getLogger(__name__)
progress = logging.getLogger("rsc.progress.train")  # a line per iteration on the terminal of `rsc run`


def _count_final_training(storage: Storage, layout: RunLayout, validations: int) -> None:
    """Add the final training's checkpoint choice to the run's search record (its last try count)."""
    record = read_search(storage, layout.search) if storage.exists(layout.search) else SearchRecord()
    write_artifact(storage, layout.search, record.model_copy(update={"final_training": validations}))


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
    features_uri, bars_uri = RunLayout(run_root).features, RunLayout(run_root).bars
    if storage.exists(join(features_uri, "manifest.json")):
        features = storage.read_manifest(features_uri)
        if features["sha256"] == hashes.get("features"):
            hashes.update(features.get("inputs", {}))
    if "bars" not in hashes and storage.exists(join(bars_uri, "manifest.json")):
        hashes["bars"] = storage.read_manifest(bars_uri)["sha256"]  # the dataset version it points at
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
    return read_tune_outcome(storage, uri).best_params if uri else {}


def run(
    cfg: Settings, split_uri: str, scaler_uri: str, best_params_uri: str | None = None, resume: bool = False
) -> TrainResult:
    storage = Storage.from_settings(cfg.storage)
    tuned = _tuned_params(storage, best_params_uri)
    plan = resolve_plan(cfg, tuned)  # settings x algorithm YAML x tuned, with where each value came from
    spec, env = plan.spec, plan.env
    environment = env_config(
        split_uri,
        scaler_uri,
        TRAIN,
        env,
        cfg.storage,
        eval_every=cfg.train.eval_every,
        risk_free_rate=cfg.evaluate.risk_free_rate,
    )
    config = build_algorithm_config(spec, environment, cfg.run.seed, tuned)
    scaler = read_scaler(storage, scaler_uri)
    probe = make_env({**environment, "mode": "eval"})  # the observation the network is exported for
    obs_size = int(probe.observation_space.shape[0])
    portfolio = (
        PortfolioSpec(
            symbols=probe.market.symbols, max_position=env.max_position, max_leverage=env.max_leverage
        )
        if env.kind == "portfolio"
        else None
    )
    symbols = getattr(probe, "symbols", None)  # a universe: one policy across several symbols
    universe = (
        UniverseSpec(symbols=symbols, embedding=env.symbol_embedding) if symbols and not portfolio else None
    )

    connect(cfg.ray.address)
    metrics = TrainMetrics(sink_from_settings(cfg.monitor, "rsc-train"), {"algorithm": spec.algorithm})
    layout = RunLayout(cfg.run_root)
    model_uri = layout.model
    iterations = plan.iterations
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
    contract = PolicySpec.for_env(
        env.model_dump(mode="json"),
        indicator_refs(cfg.features),
        scaler.model_dump(),
        algorithm=spec.algorithm,
        algorithm_config=plan.spec_path.name,
        hyperparameters=plan.training,
        best_iteration=result.best_iteration,
        validation=result.best_metrics,
        recurrent=RecurrentSpec(state=result.recurrent_state) if result.recurrent_state else None,
        portfolio=portfolio,
        universe=universe,
        inputs={"split": storage.read_manifest(split_uri)["sha256"]},
    )
    storage.write_bytes(layout.policy, contract.to_json().encode())
    split = storage.read_dataset(split_uri)
    storage.write_bytes(
        layout.drift_reference, drift_reference(split, scaler.columns, scaler.mean, scaler.std)
    )
    _count_final_training(storage, layout, result.validations)
    configure(cfg.tracking_uri, cfg.registry.experiment, join(cfg.storage.root, "mlartifacts"))
    run_id = log_training(
        run_name=cfg.run.label,
        params={
            "algorithm": spec.algorithm,
            "algorithm_config": plan.spec_path.name,
            "hyperparameters": plan.training,
            "iterations": plan.iterations,
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
        resolved={key: {"value": v.value, "source": v.source} for key, v in plan.values.items()},
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
