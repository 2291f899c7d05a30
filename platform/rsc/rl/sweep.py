"""``rsc tune``: Ray Tune over the spec's search space with OptunaSearch and ASHA (or PBT).

Each trial is RLlib's own trainable built from the AlgorithmConfig (C10); the validation callback puts
``eval/*`` metrics, and the validation bar returns, into every result, so schedulers and the results
table read the platform's backtest metric. Every checkpoint a trial validated is read back from the
trial's ``result.json``: the search looked at each of them, so each is a try for the deflated Sharpe
ratio and PBO (:class:`rsc.core.artifacts.SearchRecord`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow.fs
from ray import tune
from ray.air.constants import EXPR_RESULT_FILE
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.tune import Result
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, PopulationBasedTraining
from ray.tune.search.optuna import OptunaSearch

from rsc.rl.callbacks import EVAL_KEY, FRESH_KEY, RETURNS_KEY
from rsc.rl.spec import AlgorithmSpec, SearchDimension

log = logging.getLogger(__name__)
progress = logging.getLogger("rsc.progress.tune")


def tune_distribution(dimension: SearchDimension) -> Any:
    """Tune's sampler for one dimension."""
    if dimension.type == "choice":
        return tune.choice(dimension.values)
    if dimension.type == "randint":
        return tune.randint(int(dimension.lower), int(dimension.upper))
    if dimension.type == "quniform":
        return tune.quniform(dimension.lower, dimension.upper, dimension.q or 1.0)
    return getattr(tune, dimension.type)(dimension.lower, dimension.upper)


@dataclass
class SweepResult:
    best_params: dict[str, Any]
    best_metric: float
    trials: pd.DataFrame  # one row per trial: its sampled params and metrics
    returns: pd.DataFrame  # validation bar returns, one column per trial (the checkpoint it ranked by)
    checkpoint_returns: pd.DataFrame = field(default_factory=pd.DataFrame)  # <trial>/iter-<k> columns
    validations: dict[str, int] = field(default_factory=dict)  # trial id -> checkpoints validated
    compared_sharpes: dict[str, float] = field(default_factory=dict)  # trial id -> its ranked Sharpe


def _scheduler(spec: AlgorithmSpec, iterations: int):
    settings = spec.tune
    if settings.scheduler == "asha":
        return ASHAScheduler(
            time_attr="training_iteration",
            max_t=iterations,
            grace_period=min(settings.grace_period, iterations),
            reduction_factor=settings.reduction_factor,
        )
    if settings.scheduler == "pbt":
        return PopulationBasedTraining(
            time_attr="training_iteration",
            perturbation_interval=max(1, settings.grace_period),
            hyperparam_mutations={k: tune_distribution(d) for k, d in spec.search_space.items()},
        )
    return FIFOScheduler()


class _TrialLines(tune.Callback):
    """A compact line per trial result (``rsc run`` shows them; Tune's own table goes to the log)."""

    def __init__(self, metric: str, iterations: int):
        self.metric, self.iterations = metric, iterations

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        value = _nested(result, self.metric)
        progress.info(
            "trial %s  iteration %d/%d  %s %s",
            trial.trial_id,
            result.get("training_iteration", 0),
            self.iterations,
            self.metric,
            f"{value:.3f}" if isinstance(value, int | float) else "-",
        )

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        params = ", ".join(f"{key}={_short(value)}" for key, value in trial.evaluated_params.items())
        progress.info("trial %s  done  %s", trial.trial_id, params)


def _nested(result: dict, metric: str) -> Any:
    """``eval/sharpe`` in a result as Tune hands it to callbacks (nested dicts, not yet flattened)."""
    value: Any = result.get(metric)
    if value is None:
        value = result
        for part in metric.split("/"):
            value = value.get(part) if isinstance(value, dict) else None
    return value


def validated_checkpoints(result: Result) -> list[dict[str, Any]]:
    """The trial's results that ran a validation backtest, oldest first (from its ``result.json``)."""
    path = f"{result.path}/{EXPR_RESULT_FILE}"
    with result.filesystem.open_input_stream(path) as stream:
        lines = stream.read().decode().splitlines()
    return [row for row in map(json.loads, filter(str.strip, lines)) if row.get(FRESH_KEY)]


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _trial_dirname(trial) -> str:
    return f"trial_{trial.trial_id}"


@dataclass(frozen=True)
class SweepStorage:
    """Where the Tune experiment lives: ``path`` on ``filesystem`` (None: the local disk).

    On a cluster this is the run root in the object store: trials run on worker nodes, and Ray refuses a
    path on the head's local disk there at the first checkpoint.
    """

    path: str  # the experiment folder, without a scheme when a filesystem is given
    filesystem: pyarrow.fs.FileSystem | None = None

    @property
    def parent(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[0]

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    def clear(self) -> None:
        """Remove an earlier sweep here: a fresh sweep never mixes in another sweep's trials."""
        fs = self.filesystem or pyarrow.fs.LocalFileSystem()
        if fs.get_file_info(self.path).type == pyarrow.fs.FileType.Directory:
            fs.delete_dir(self.path)


def build_tuner(
    spec: AlgorithmSpec,
    config: AlgorithmConfig,
    where: SweepStorage,
    seed: int,
    num_samples: int | None,
    iterations: int,
    resume: bool,
) -> tune.Tuner:
    """A new Tuner, or ``Tuner.restore`` of an interrupted experiment at ``where``."""
    param_space = config.copy(copy_frozen=False).training(
        **{key: tune_distribution(dim) for key, dim in spec.search_space.items()}
    )
    if resume and tune.Tuner.can_restore(where.path, storage_filesystem=where.filesystem):
        log.info("restoring the interrupted sweep in %s", where.path)
        return tune.Tuner.restore(
            where.path,
            trainable=spec.algorithm,
            param_space=param_space,
            resume_unfinished=True,
            resume_errored=True,
            storage_filesystem=where.filesystem,
        )
    where.clear()
    use_optuna = spec.tune.scheduler != "pbt"  # PBT mutates configs itself
    return tune.Tuner(
        spec.algorithm,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            metric=spec.tune.metric,
            mode=spec.tune.mode,
            num_samples=num_samples or spec.tune.num_samples,
            max_concurrent_trials=spec.tune.max_concurrent_trials,
            search_alg=OptunaSearch(seed=seed) if use_optuna else None,
            scheduler=_scheduler(spec, iterations),
            trial_dirname_creator=_trial_dirname,
        ),
        run_config=tune.RunConfig(
            name=where.name,
            storage_path=where.parent,
            storage_filesystem=where.filesystem,
            stop={"training_iteration": iterations},
            checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=1, num_to_keep=1),
            callbacks=[_TrialLines(spec.tune.metric, iterations)],
            verbose=1,
        ),
    )


def run_sweep(
    spec: AlgorithmSpec,
    config: AlgorithmConfig,
    where: SweepStorage,
    seed: int,
    num_samples: int | None = None,
    iterations: int | None = None,
    resume: bool = False,
) -> SweepResult:
    """Search ``spec.search_space`` around ``config``; returns the best trial and every trial's numbers."""
    if not spec.search_space:
        raise ValueError("the algorithm config has no search_space to tune")
    iterations = iterations or spec.tune.iterations or spec.stop.training_iteration
    tuner = build_tuner(spec, config, where, seed, num_samples, iterations, resume)
    results = tuner.fit()
    if results.errors:
        raise RuntimeError(f"{len(results.errors)} trial(s) failed; first: {results.errors[0]}")
    metric, mode = spec.tune.metric, spec.tune.mode
    best = results.get_best_result(metric=metric, mode=mode, scope="all")
    rows, returns, checkpoints, validations, compared = [], {}, {}, {}, {}
    for result in results:
        history = result.metrics_dataframe
        values = history[metric] if metric in history else pd.Series(dtype=float)
        trial_id = result.metrics.get("trial_id")
        validated = validated_checkpoints(result)
        for row in validated:
            column = f"{trial_id}/iter-{row['training_iteration']}"
            checkpoints[column] = pd.Series(row[RETURNS_KEY], dtype=float)
        scored = [row for row in validated if _nested(row, metric) is not None]
        ranked_by = (max if mode == "max" else min)(scored, key=lambda r: _nested(r, metric), default=None)
        validations[trial_id] = len(validated)
        if ranked_by is not None:
            compared[trial_id] = float(ranked_by[EVAL_KEY]["sharpe"])
        rows.append(
            {
                "trial_id": trial_id,
                **{f"config/{k}": result.config.get(k) for k in spec.search_space},
                "iterations": result.metrics.get("training_iteration"),
                "validations": len(validated),
                f"best/{metric}": float(values.max() if mode == "max" else values.min()),
                **{f"{EVAL_KEY}/{k}": v for k, v in result.metrics.get(EVAL_KEY, {}).items()},
            }
        )
        chosen = ranked_by or result.metrics  # the checkpoint the ranking used, its returns
        returns[trial_id] = pd.Series(chosen.get(RETURNS_KEY, []), dtype=float)
    best_values = best.metrics_dataframe[metric]
    return SweepResult(
        best_params={key: best.config.get(key) for key in spec.search_space},
        best_metric=float(best_values.max() if mode == "max" else best_values.min()),
        trials=pd.DataFrame(rows),
        returns=pd.DataFrame(returns),
        checkpoint_returns=pd.DataFrame(checkpoints),
        validations=validations,
        compared_sharpes=compared,
    )
