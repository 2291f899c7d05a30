"""Validation with the platform's own backtest metric, inside RLlib's training loop.

Every ``eval_every`` iterations (and on the first) the current module trades the validation window
greedily through the same env and cost model. ``eval/sharpe`` and friends land in every result dict
(the latest values carried between validations) for Tune's schedulers and ``rsc train`` to read.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ray.rllib.callbacks.callbacks import RLlibCallback

from rsc.core import metrics
from rsc.core.schema import VALIDATION
from rsc.env import greedy_rollout
from rsc.env.rollout import Rollout
from rsc.env.universe import UniverseEnv

EVAL_KEY = "eval"
RETURNS_KEY = "eval_returns"  # the validation backtest's bar returns (for DSR / PBO across trials)
FRESH_KEY = "eval_fresh"  # 1 when this iteration ran a validation backtest, 0 when the values are carried


def validation_backtest(algorithm: Any) -> tuple[dict[str, float], list[float]]:
    """Backtest the algorithm's current module over the validation part: metrics and bar returns.

    A policy trained across a universe trades each symbol's validation part: its figures are the
    median over the symbols (as the evaluation's), its returns every symbol's, one after the other.
    """
    from rsc.rl.envs import make_env
    from rsc.rl.policy import greedy_actor

    env = make_env({**algorithm.config.env_config, "part": VALIDATION, "mode": "eval"})
    risk_free = float(algorithm.config.env_config.get("risk_free_rate", 0.0))
    module = algorithm.get_module()
    if not isinstance(env, UniverseEnv):
        return _measure(greedy_rollout(env, greedy_actor(module)), risk_free)
    runs = [
        _measure(greedy_rollout(env.envs[s], env.actor_for(s, greedy_actor(module))), risk_free)
        for s in env.symbols
    ]
    figures = {key: float(np.median([run[0][key] for run in runs])) for key in runs[0][0]}
    return figures, [r for run in runs for r in run[1]]


def _measure(rollout: Rollout, risk_free: float) -> tuple[dict[str, float], list[float]]:
    periods = metrics.infer_periods_per_year(rollout.timestamps).periods_per_year
    summary = metrics.summary(rollout.equity, periods, risk_free)  # the evaluation's Sharpe, rf included
    return summary, metrics.bar_returns(rollout.equity).tolist()


class ValidationCallback(RLlibCallback):
    def __init__(self) -> None:
        super().__init__()
        self._latest: tuple[dict[str, float], list[float]] | None = None

    def on_train_result(self, *, algorithm, metrics_logger=None, result: dict, **kwargs) -> None:
        every = int(algorithm.config.env_config.get("eval_every", 1))
        iteration = result["training_iteration"]
        fresh = self._latest is None or iteration % every == 0
        if fresh:
            self._latest = validation_backtest(algorithm)
        result[EVAL_KEY] = dict(self._latest[0])
        result[RETURNS_KEY] = list(self._latest[1])
        result[FRESH_KEY] = int(fresh)  # each fresh one is a checkpoint a choice could follow
