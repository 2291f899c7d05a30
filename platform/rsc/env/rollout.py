"""One full evaluation pass of a policy through the env: the shared backtest of a learned policy."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from rsc.env.portfolio import PortfolioEnv
from rsc.env.trading import TradingEnv


class Rollout(NamedTuple):
    """Arrays over the evaluated bars ``[N + 1]`` (index 0 = before the first decision).

    ``positions`` holds each step's target: a weight ``[N + 1]`` for one asset, weights ``[N + 1, A]``
    for a portfolio of A assets (and ``close`` is ``[N + 1, A]`` then).
    """

    timestamps: np.ndarray
    equity: np.ndarray
    positions: np.ndarray
    costs: np.ndarray
    close: np.ndarray


def greedy_rollout(env: TradingEnv | PortfolioEnv, act: Callable[[np.ndarray], int]) -> Rollout:
    """Run ``act`` (observation -> action) from the first tradable bar to the end of data."""
    if env.mode != "eval":
        raise ValueError("greedy_rollout needs an env in mode='eval' (one full pass)")
    obs, _ = env.reset(seed=0)
    start = env.t
    portfolio = isinstance(env, PortfolioEnv)
    equity, positions, costs = [env.equity], [np.zeros(env.n_assets) if portfolio else 0.0], [0.0]
    done = False
    while not done:
        obs, _, terminated, truncated, info = env.step(act(obs))
        equity.append(info["equity"])
        positions.append(info["weights"] if portfolio else info["position"])
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
