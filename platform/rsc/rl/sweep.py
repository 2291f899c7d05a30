"""``rsc tune``: Ray Tune over the spec's search space with OptunaSearch and ASHA."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pandas as pd
from ray import tune
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, PopulationBasedTraining
from ray.tune.search.optuna import OptunaSearch

from rsc.rl.spec import AlgorithmSpec, SearchDimension

log = logging.getLogger(__name__)


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
    trials: pd.DataFrame  # one row per trial: its sampled params and final metrics


def _scheduler(spec: AlgorithmSpec, iterations: int, seed: int):
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


def run_sweep(
    spec: AlgorithmSpec,
    config: AlgorithmConfig,
    storage_path: str,
    name: str,
    seed: int,
    num_samples: int | None = None,
    iterations: int | None = None,
) -> SweepResult:
    """Search ``spec.search_space`` around ``config``; returns the best trial's sampled values."""
    if not spec.search_space:
        raise ValueError("the algorithm config has no search_space to tune")
    iterations = iterations or spec.tune.iterations or spec.stop.training_iteration
    param_space = config.copy(copy_frozen=False).training(
        **{key: tune_distribution(dim) for key, dim in spec.search_space.items()}
    )
    use_optuna = spec.tune.scheduler != "pbt"  # PBT mutates configs itself
    tuner = tune.Tuner(
        spec.algorithm,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            metric=spec.tune.metric,
            mode=spec.tune.mode,
            num_samples=num_samples or spec.tune.num_samples,
            max_concurrent_trials=spec.tune.max_concurrent_trials,
            trial_dirname_creator=lambda trial: f"trial_{trial.trial_id}",
            search_alg=OptunaSearch(seed=seed) if use_optuna else None,
            scheduler=_scheduler(spec, iterations, seed),
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage_path,
            stop={"training_iteration": iterations},
            verbose=1,
        ),
    )
    results = tuner.fit()
    if results.errors:
        raise RuntimeError(f"{len(results.errors)} trial(s) failed; first: {results.errors[0]}")
    best = results.get_best_result(metric=spec.tune.metric, mode=spec.tune.mode, scope="all")
    rows = []
    for result in results:
        params = {key: result.config.get(key) for key in spec.search_space}
        history = result.metrics_dataframe
        best_value = (
            history[spec.tune.metric].max() if spec.tune.mode == "max" else history[spec.tune.metric].min()
        )
        rows.append(
            {
                "trial_id": result.metrics.get("trial_id"),
                **{f"config/{k}": v for k, v in params.items()},
                "iterations": result.metrics.get("training_iteration"),
                f"best/{spec.tune.metric}": best_value,
                **{
                    k: result.metrics.get("eval", {}).get(k.split("/", 1)[1])
                    for k in ("eval/sharpe", "eval/total_return", "eval/max_drawdown")
                },
            }
        )
    best_value = best.metrics_dataframe[spec.tune.metric]
    return SweepResult(
        best_params={key: best.config.get(key) for key in spec.search_space},
        best_metric=float(best_value.max() if spec.tune.mode == "max" else best_value.min()),
        trials=pd.DataFrame(rows),
    )
