"""The multi-asset environment ``rsc/Portfolio-v0``: portfolio weights over N assets and cash."""

from __future__ import annotations

from operator import mul
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from rsc.config.settings import EnvSettings
from rsc.core import execution, observation
from rsc.core.rewards import make_reward
from rsc.env.blocks import OBSERVATION_BLOCK, ObservationBlocks
from rsc.env.costs import env_costs
from rsc.env.market import PanelArrays, episode_bounds

PORTFOLIO_ENV_ID = "rsc/Portfolio-v0"


class PortfolioEnv(ObservationBlocks, gym.Env):
    """Allocate equity across N assets and cash each bar.

    Description:
        At bar ``t`` the agent sees every asset's features up to ``t`` and its current weights, and
        outputs N + 1 non-negative scores (last = cash). Scores are normalised into weights, each asset
        capped at ``max_position`` and gross exposure at ``max_leverage``
        (:func:`rsc.core.execution.normalise_weights`). Orders fill at bar ``t + 1``'s open (or close,
        per ``fill``) with the same per-asset costs as ``rsc/Trading-v0``
        (:func:`rsc.core.execution.fill_weights`); the portfolio is marked at ``t + 1``'s close. An
        asset that did not trade on bar ``t + 1`` (``market.tradable``) keeps its units.

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

    def __init__(
        self,
        market: PanelArrays,
        settings: EnvSettings,
        mode: Literal["train", "eval"] = "train",
        risk_free_rate: float = 0.0,
    ):
        self.market, self.settings, self.mode = market, settings, mode
        _, n_assets, n_features = market.features.shape
        self.n_assets = n_assets
        self.costs = env_costs(settings, market.timestamps)
        self._reward = make_reward(
            settings.reward,
            settings.drawdown_penalty,
            settings.sharpe_eta,
            risk_free_rate / self.costs.periods_per_year,
        )
        size = settings.window * n_assets * n_features + n_assets
        bound = observation.FEATURE_CLIP
        self.observation_space = gym.spaces.Box(-bound, bound, shape=(size,), dtype=np.float32)
        self.action_space = gym.spaces.Box(0.0, 1.0, shape=(n_assets + 1,), dtype=np.float32)
        self._window_rows = observation.window_rows(market.features, settings.window, extra=n_assets)
        self._obs_width = self._window_rows.shape[1]
        self._first_slot = self._obs_width - n_assets  # where a row's weight slots begin
        # Prices and cost rates as nested lists: with a handful of assets, float arithmetic on list
        # items beats numpy's per-call cost; from execution.VECTOR_ASSETS assets on, numpy rows
        # (see benchmarks/env_throughput.py).
        self._vector = n_assets > execution.VECTOR_ASSETS
        spread = 0.5 * settings.spread_factor * (market.high - market.low) / market.close  # [T, N]
        fills = market.open if settings.fill == "next_open" else market.close
        rates, opens, closes = self.costs.rate + spread, fills, market.close  # rates of orders decided at t
        if self._vector:
            self._rates, self._open, self._close = rates, opens, closes
        else:
            self._rates, self._open, self._close = rates.tolist(), opens.tolist(), closes.tolist()
        self._tradable = market.tradable  # [T, N] or None (every bar tradable)
        self._t = self._end = market.first
        self._start_episode()

    def _start_episode(self) -> None:
        """A fresh portfolio, reward state and observation block at bar ``t``."""
        cash = self.settings.initial_cash
        flat = np.zeros(self.n_assets) if self._vector else [0.0] * self.n_assets
        self._cash, self._units, self._equity, self._peak = cash, flat, cash, cash
        self._reward.reset(cash)
        self._copy_block(self._t)

    @property
    def t(self) -> int:
        return self._t

    @property
    def equity(self) -> float:
        return self._equity

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._t, self._end = episode_bounds(
            self.mode, self.market.first, len(self.market.close), self.settings.episode_length, self.np_random
        )
        self._start_episode()
        return self._rows[0], {"equity": self._equity}

    def step(self, action):
        t, settings = self._t, self.settings
        nxt = self._t = t + 1
        weights = execution.normalise_weights(action, settings.max_position, settings.max_leverage)
        rates, prices, closes = self._rates[t], self._open[nxt], self._close[nxt]
        tradable = None if self._tradable is None else self._tradable[nxt]
        if tradable is not None and not tradable.all():
            weights = execution.hold_untradable(
                weights, self._cash, self._units, prices, tradable, settings.max_leverage
            )
        else:
            tradable = None
        cash, units, cost = execution.fill_weights(self._cash, self._units, weights, prices, rates, tradable)
        previous = self._equity
        equity = cash + (float(units @ closes) if self._vector else sum(map(mul, units, closes)))
        self._peak = max(self._peak, equity)
        reward = self._reward.step(previous, equity)
        terminated = equity <= settings.ruin_fraction * settings.initial_cash
        if settings.max_drawdown is not None and equity < (1.0 - settings.max_drawdown) * self._peak:
            # The kill switch sells at the close it saw (an asset that did not trade is held).
            flat = np.zeros(self.n_assets) if self._vector else [0.0] * self.n_assets
            cash, units, exit_cost = execution.fill_weights(cash, units, flat, closes, rates, tradable)
            cost += exit_cost
            held = float(np.asarray(units) @ np.asarray(closes)) if tradable is not None else 0.0
            equity, terminated = cash + held, True
        self._cash, self._units, self._equity = cash, units, equity
        truncated = not terminated and nxt >= self._end
        i = nxt - self._block_start
        if i >= OBSERVATION_BLOCK:
            self._copy_block(nxt)
            i = 0
        if equity > 0.0:  # the weight slots, the row's last N (the block's rows start zeroed there)
            if self._vector:
                self._block[i, self._first_slot :] = units * closes / equity
            else:
                slots, slot = self._slots, i * self._obs_width + self._first_slot
                for held, close in zip(units, closes, strict=True):
                    if held:
                        slots[slot] = held * close / equity
                    slot += 1
        info = {"equity": equity, "cost": cost, "weights": np.array(weights)}
        return self._rows[i], reward, terminated, truncated, info
