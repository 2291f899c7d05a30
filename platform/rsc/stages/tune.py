"""tune: Ray Tune + OptunaSearch over the algorithm YAML's search space -> best hyperparameters.

Writes ``tune/trials.parquet`` (every trial: sampled config, validation metrics),
``tune/trial_returns.parquet`` (each trial's validation bar returns, for the deflated Sharpe ratio and
PBO), ``tune/best_params.json``, and one MLflow parent run for the sweep with a child run per trial.
With ``tune.selection.walk_forward`` the top trials are re-trained on every walk-forward fold and the
choice goes by the configured aggregate (``tune/walk_forward.parquet`` keeps the per-fold numbers,
``tune/walk_forward_returns.parquet`` each candidate's out-of-sample bar returns per fold, one column
``candidate-<n>/fold-<k>`` each, for a walk-forward analysis of one's own).

``tune/checkpoint_returns.parquet`` holds the validation bar returns of every checkpoint every trial
validated (``<trial>/iter-<k>``), and ``tune/search.json`` counts every try the selection looked at
(:class:`rsc.core.artifacts.SearchRecord`): the evaluate stage derives the deflated Sharpe ratio's
effective number of trials and PBO from them.
"""

from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from rsc.config import Settings
from rsc.core.artifacts import SearchRecord, TuneOutcome
from rsc.core.schema import TRAIN, VALIDATION
from rsc.data.splits import assign_fold
from rsc.registry.tracking import configure, log_sweep
from rsc.rl.algorithm import build_algorithm_config
from rsc.rl.envs import env_config, observation_size_of
from rsc.rl.plan import TrainingPlan, resolve_plan
from rsc.rl.runtime import connect
from rsc.rl.sweep import SweepResult, SweepStorage, run_sweep
from rsc.rl.train import train_algorithm
from rsc.rl.walk_forward import select, summarise, usable_folds
from rsc.storage import Storage, join
from rsc.storage.layout import RunLayout, read_folds, write_artifact

log = logging.getLogger(__name__)
progress = logging.getLogger("rsc.progress.tune")  # lines on the terminal of `rsc run`


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


def _walk_forward(
    cfg: Settings, plan: TrainingPlan, storage: Storage, split_uri: str, sweep: SweepResult
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """Re-train the top sweep trials on every usable fold; returns (chosen params, per-fold, returns).

    Only folds whose validation window ends by ``split.validation_end`` are used, so the held-out test
    part never influences selection. Each fold trains on its own rows with its own scaler (fitted on
    that fold's training rows by the split stage).
    """
    selection, spec = cfg.tune.selection, plan.spec
    layout = RunLayout(cfg.run_root)
    folds = usable_folds(read_folds(storage, layout.folds).folds, str(cfg.split.validation_end))
    if not folds:
        raise ValueError(
            f"walk-forward selection needs folds whose validation ends by {cfg.split.validation_end}; "
            "none do: add folds (split.walk_forward.folds) or move split.validation_end"
        )
    ranked = sweep.trials.sort_values(f"best/{spec.tune.metric}", ascending=spec.tune.mode == "min")
    candidates = [
        {key.removeprefix("config/"): value for key, value in row.items() if key.startswith("config/")}
        for row in ranked.head(selection.candidates).to_dict(orient="records")
    ]
    frame = storage.read_dataset(split_uri)
    env = plan.env
    rows, returns = [], {}
    for index, fold in enumerate(folds):
        dataset_uri, scaler_uri = join(layout.fold(index), "data"), join(layout.fold(index), "scaler.json")
        storage.write_dataset(
            dataset_uri,
            assign_fold(frame, fold.model_dump()),
            inputs={"split": storage.read_manifest(split_uri)["sha256"]},
        )
        write_artifact(storage, scaler_uri, fold.scaler)
        for number, params in enumerate(candidates):
            environment = env_config(
                dataset_uri, scaler_uri, TRAIN, env, cfg.storage, risk_free_rate=cfg.evaluate.risk_free_rate
            )
            config = build_algorithm_config(spec, environment, cfg.run.seed, params)
            result = train_algorithm(
                config,
                plan.selection_iterations,
                join(layout.fold(index), f"candidate-{number}"),
                storage,
                observation_size_of(environment),
                metric=selection.metric,
            )
            rows.append(
                {
                    "candidate": number,
                    "fold": index,
                    "train_start": fold.train[0],
                    "train_end": fold.train[1],
                    "validation_start": fold.validation[0],
                    "validation_end": fold.validation[1],
                    "train_rows": fold.rows.get(TRAIN, 0),
                    "validation_rows": fold.rows.get(VALIDATION, 0),
                    "validations": result.validations,
                    **result.best_metrics,
                }
            )
            returns[f"candidate-{number}/fold-{index}"] = pd.Series(result.best_returns, dtype=float)
            progress.info(
                "walk-forward fold %d/%d candidate %d  %s %.3f",
                index + 1,
                len(folds),
                number,
                selection.metric,
                result.best_metrics.get(selection.metric, math.nan),
            )
    per_fold = pd.DataFrame(rows)
    summary = summarise(per_fold, selection.metric, selection.aggregate)
    chosen = select(summary)
    per_fold["chosen"] = per_fold["candidate"] == chosen
    per_fold = per_fold.merge(summary[["candidate", "score"]], on="candidate")
    log.info(
        "walk-forward: %s per candidate (%s):\n%s", selection.metric, selection.aggregate, summary.to_string()
    )
    return candidates[chosen], per_fold, pd.DataFrame(returns)


def run(cfg: Settings, split_uri: str, scaler_uri: str, resume: bool = False) -> TuneResult:
    storage = Storage.from_settings(cfg.storage)
    layout = RunLayout(cfg.run_root)
    best_params_uri, trials_uri = layout.best_params, layout.trials
    if not cfg.tune.enabled:
        write_artifact(storage, best_params_uri, TuneOutcome(selected_by="tune.enabled=false"))
        write_artifact(storage, layout.search, SearchRecord())  # no search: the final training only
        log.info("tune: disabled; training with the algorithm config's own hyperparameters")
        return TuneResult(best_params_uri, {}, math.nan, trials_uri, 0)

    plan = resolve_plan(cfg)  # iterations, trials and env: settings x algorithm YAML, one precedence
    spec = plan.spec
    environment = env_config(
        split_uri, scaler_uri, TRAIN, plan.env, cfg.storage, risk_free_rate=cfg.evaluate.risk_free_rate
    )
    config = build_algorithm_config(spec, environment, cfg.run.seed)
    filesystem, path = storage.arrow_filesystem(layout.sweep)
    connect(cfg.ray.address)
    sweep = run_sweep(
        spec,
        config,
        SweepStorage(path, filesystem),
        seed=cfg.run.seed,
        num_samples=plan.num_samples,
        iterations=plan.sweep_iterations,
        resume=resume,
    )

    _write_parquet(storage, trials_uri, sweep.trials)
    _write_parquet(storage, layout.trial_returns, sweep.returns)
    _write_parquet(storage, layout.checkpoint_returns, sweep.checkpoint_returns)
    best_params, selected_by, tables, retrainings = sweep.best_params, "sweep", {}, {}
    if cfg.tune.selection.walk_forward:
        best_params, per_fold, fold_returns = _walk_forward(cfg, plan, storage, split_uri, sweep)
        _write_parquet(storage, layout.walk_forward, per_fold)
        _write_parquet(storage, layout.walk_forward_returns, fold_returns)
        selected_by = f"walk-forward {cfg.tune.selection.aggregate} of {cfg.tune.selection.metric}"
        tables["walk_forward"] = per_fold
        retrainings = {
            f"candidate-{row.candidate}/fold-{row.fold}": int(row.validations)
            for row in per_fold.itertuples()
        }
    record = SearchRecord(
        tune_trials=sweep.validations, compared_sharpes=sweep.compared_sharpes, walk_forward=retrainings
    )
    write_artifact(storage, layout.search, record)
    progress.info(
        "tune: %d tries looked at on validation data (%s)",
        record.raw_count,
        ", ".join(f"{key} {value}" for key, value in record.breakdown().items() if value),
    )
    outcome = TuneOutcome(
        best_params=best_params,
        selected_by=selected_by,
        metric=spec.tune.metric,
        best_metric=sweep.best_metric if math.isfinite(sweep.best_metric) else None,
        trials=len(sweep.trials),
        algorithm=spec.algorithm,
    )
    write_artifact(storage, best_params_uri, outcome)
    configure(cfg.tracking_uri, cfg.registry.experiment, join(cfg.storage.root, "mlartifacts"))
    log_sweep(
        run_name=f"{cfg.run.label}-sweep",
        params={
            "algorithm": spec.algorithm,
            "search_space": {k: d.model_dump() for k, d in spec.search_space.items()},
        },
        trials=sweep.trials,
        best_params=best_params,
        metric=spec.tune.metric,
        best_metric=sweep.best_metric,
        tables=tables,
    )
    log.info(
        "tune: %d trials, best %s=%.3f; chosen by %s: %s",
        len(sweep.trials),
        spec.tune.metric,
        sweep.best_metric,
        selected_by,
        best_params,
    )
    return TuneResult(best_params_uri, best_params, sweep.best_metric, trials_uri, len(sweep.trials))
