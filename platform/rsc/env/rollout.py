"""One full evaluation pass of a policy through the env: the shared backtest of a learned policy."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from rsc.env.trading import TradingEnv


class Rollout(NamedTuple):
    """Arrays over the evaluated bars ``[N + 1]`` (index 0 = before the first decision)."""

    timestamps: np.ndarray
    equity: np.ndarray
    positions: np.ndarray
    costs: np.ndarray
    close: np.ndarray


def greedy_rollout(env: TradingEnv, act: Callable[[np.ndarray], int]) -> Rollout:
    """Run ``act`` (observation -> action index) from the first tradable bar to the end of data."""
    if env.mode != "eval":
        raise ValueError("greedy_rollout needs an env in mode='eval' (one full pass)")
    obs, _ = env.reset(seed=0)
    start = env.t
    equity, positions, costs = [env.equity], [0.0], [0.0]
    done = False
    while not done:
        obs, _, terminated, truncated, info = env.step(act(obs))
        equity.append(info["equity"])
        positions.append(info["position"])
        costs.append(info["cost"])
        done = terminated or truncated
    stop = start + len(equity)
    market = env.market
    return Rollout(
        market.timestamps[start:stop],
        np.asarray(equity),
        np.asarray(positions),
        np.asarray(costs),
        market.close[start:stop],
    )
