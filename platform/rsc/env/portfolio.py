"""The multi-asset environment ``rsc/Portfolio-v0``: portfolio weights over N assets and cash."""

from __future__ import annotations

from typing import Any, Literal

import gymnasium as gym
import numpy as np

from rsc.config.settings import EnvSettings
from rsc.core import execution, observation
from rsc.core.rewards import make_reward
from rsc.env.market import PanelArrays, episode_bounds

PORTFOLIO_ENV_ID = "rsc/Portfolio-v0"


class PortfolioEnv(gym.Env):
    """Allocate equity across N assets and cash each bar.

    Description:
        At bar ``t`` the agent sees every asset's features up to ``t`` and its current weights, and
        outputs N + 1 non-negative scores (last = cash). Scores are normalised into weights, each asset
        capped at ``max_position`` and gross exposure at ``max_leverage``
        (:func:`rsc.core.execution.normalise_weights`). Orders fill at bar ``t + 1``'s open with the
        same per-asset costs as ``rsc/Trading-v0`` (:func:`rsc.core.execution.fill_weights`); the
        portfolio is marked at ``t + 1``'s close.

    Observation Space:
        ``Box(window * N * F + N)``: the ``[window, N, F]`` feature window flattened (time, then
        asset, then feature), then the current weight of each asset.

    Action Space:
        ``Box(0, 1, (N + 1,))``: scores for each asset and for cash.

    Rewards:
        As ``rsc/Trading-v0``: chosen by name from :data:`rsc.core.rewards.REWARDS`.

    Episode End:
        Terminated below ``ruin_fraction`` of the initial cash or beyond ``max_drawdown``; truncated
        at the end of the episode slice or of the data.

    Arguments:
        market: PanelArrays; settings: EnvSettings (``positions``, ``action``, ``stop_loss`` and
        ``take_profit`` do not apply); mode: ``"train"`` or ``"eval"``.

    Version History:
        v0: first version.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 - Gymnasium's class attribute

    def __init__(self, market: PanelArrays, settings: EnvSettings, mode: Literal["train", "eval"] = "train"):
        self._reward = make_reward(settings.reward, settings.drawdown_penalty, settings.sharpe_eta)
        self.market, self.settings, self.mode = market, settings, mode
        _, n_assets, n_features = market.features.shape
        self.n_assets = n_assets
        self.costs = execution.Costs(settings.commission_bps, settings.slippage_bps, settings.spread_factor)
        size = settings.window * n_assets * n_features + n_assets
        bound = observation.FEATURE_CLIP
        self.observation_space = gym.spaces.Box(-bound, bound, shape=(size,), dtype=np.float32)
        self.action_space = gym.spaces.Box(0.0, 1.0, shape=(n_assets + 1,), dtype=np.float32)
        self._obs_rows = observation.window_rows(market.features, settings.window, extra=n_assets)
        spread = 0.5 * settings.spread_factor * (market.high - market.low) / market.close  # [T, N]
        self._rates = np.ascontiguousarray(self.costs.rate + spread)  # cost rates of orders decided on bar t
        self._t = self._end = market.first
        self._reset_portfolio()

    def _reset_portfolio(self) -> None:
        cash = self.settings.initial_cash
        self._cash, self._units, self._equity, self._peak = cash, np.zeros(self.n_assets), cash, cash
        self._reward.reset(cash)

    @property
    def t(self) -> int:
        return self._t

    @property
    def equity(self) -> float:
        return self._equity

    def _observe(self) -> np.ndarray:
        obs = self._obs_rows[self._t].copy()
        if self._equity > 0:
            obs[-self.n_assets :] = self._units * self.market.close[self._t] / self._equity
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._t, self._end = episode_bounds(
            self.mode, self.market.first, len(self.market.close), self.settings.episode_length, self.np_random
        )
        self._reset_portfolio()
        return self._observe(), {"equity": self._equity}

    def step(self, action):
        t, market, settings = self._t, self.market, self.settings
        nxt = t + 1
        weights = execution.normalise_weights(action, settings.max_position, settings.max_leverage)
        rates = self._rates[t]
        self._cash, self._units, cost = execution.fill_weights(
            self._cash, self._units, weights, market.open[nxt], rates
        )
        self._t = nxt
        previous = self._equity
        self._equity = self._cash + float(self._units @ market.close[nxt])
        self._peak = max(self._peak, self._equity)
        reward = self._reward.step(previous, self._equity)
        terminated = self._equity <= settings.ruin_fraction * settings.initial_cash
        if settings.max_drawdown is not None and self._equity < (1.0 - settings.max_drawdown) * self._peak:
            self._cash, self._units, exit_cost = execution.fill_weights(
                self._cash, self._units, np.zeros(self.n_assets), market.close[nxt], rates
            )
            cost += exit_cost
            self._equity = self._cash
            terminated = True
        truncated = not terminated and nxt >= self._end
        info = {"equity": self._equity, "cost": cost, "weights": weights}
        return self._observe(), reward, terminated, truncated, info
