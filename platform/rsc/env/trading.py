"""The single-asset trading environment ``rsc/Trading-v0``."""

from __future__ import annotations

from typing import Any, Literal

import gymnasium as gym
import numpy as np

from rsc.config.settings import EnvSettings
from rsc.core import execution, observation
from rsc.core.rewards import REWARDS, RewardParams
from rsc.env.market import MarketArrays, episode_bounds

ENV_ID = "rsc/Trading-v0"


class TradingEnv(gym.Env):
    """Trade one asset by choosing a target position each bar.

    Description:
        At bar ``t`` the agent sees features up to ``t`` and picks a target position (a fraction of
        equity, within ``max_position``). The order fills at bar ``t + 1``'s open (or close, per
        ``fill``) with commission, slippage and an optional range-based spread on the traded notional;
        shorts pay an optional borrow fee per bar. Optional stop-loss and take-profit levels (fractions
        of the entry price) are checked against bar ``t + 1``'s range, never the bar the decision saw.
        The portfolio is marked at ``t + 1``'s close. All money arithmetic is :mod:`rsc.core.execution`.

    Observation Space:
        ``Box(window * F + 2)``: the last ``window`` rows of scaled features (oldest first,
        flattened), then the current position weight and the position's unrealised return.

    Action Space:
        ``action="discrete"``: ``Discrete(len(positions))``, an index into ``positions``.
        ``action="continuous"``: ``Box(-1, 1, (1,))``, scaled by ``max_position``.

    Rewards:
        Chosen by name from :data:`rsc.core.rewards.REWARDS`: ``log_return`` (default),
        ``drawdown_penalty``, ``diff_sharpe``.

    Episode End:
        Terminated when equity falls below ``ruin_fraction`` of the initial cash or the drawdown
        exceeds ``max_drawdown`` (the position is flattened first); truncated at the end of the
        episode slice (training) or of the data (evaluation).

    Arguments:
        market: preloaded arrays; settings: EnvSettings; mode: ``"train"`` (random starts,
        ``episode_length`` bars) or ``"eval"`` (one full pass from ``market.first``).

    Version History:
        v0: first version.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 - Gymnasium's class attribute

    def __init__(self, market: MarketArrays, settings: EnvSettings, mode: Literal["train", "eval"] = "train"):
        if settings.reward not in REWARDS:
            raise ValueError(f"unknown reward {settings.reward!r}; known: {sorted(REWARDS)}")
        self.market, self.settings, self.mode = market, settings, mode
        self.costs = execution.Costs(
            settings.commission_bps,
            settings.slippage_bps,
            settings.spread_factor,
            settings.borrow_bps_per_year,
            settings.periods_per_year,
        )
        window, n_features = settings.window, market.features.shape[1]
        bound = observation.FEATURE_CLIP
        self.observation_space = gym.spaces.Box(
            -bound, bound, shape=(observation.observation_size(window, n_features),), dtype=np.float32
        )
        if settings.action == "discrete":
            self.action_space = gym.spaces.Discrete(len(settings.positions))
        else:
            self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        # Everything a step reads is prepared here, once (the step is the hot path, see
        # benchmarks/env_throughput.py): one observation row per bar, prices and per-bar cost rates as
        # Python lists (float arithmetic on list items is several times cheaper than on numpy scalars).
        rows = observation.window_rows(market.features, window, extra=observation.POSITION_SLOTS)
        self._obs_rows = list(rows)
        self._open, self._high = market.open.tolist(), market.high.tolist()
        self._low, self._close = market.low.tolist(), market.close.tolist()
        self._fill_prices = self._open if settings.fill == "next_open" else self._close
        spread = (
            0.5 * settings.spread_factor * (market.high - market.low) / market.close
            if settings.spread_factor
            else np.zeros(len(market.close))
        )
        self._rates = (self.costs.rate + spread).tolist()  # cost rate of an order decided on bar t
        self._borrow_rate = self.costs.borrow_rate_per_bar
        self._positions = [execution.clip_weight(p, settings.max_position) for p in settings.positions]
        self._discrete = settings.action == "discrete"
        self._fill_at_open = settings.fill == "next_open"
        self._protective = settings.stop_loss is not None or settings.take_profit is not None
        self._ruin_equity = settings.ruin_fraction * settings.initial_cash
        self._max_drawdown = settings.max_drawdown
        self._reward = REWARDS[settings.reward]
        self._reward_step = self._reward.step
        self._reward_params = RewardParams(settings.drawdown_penalty, settings.sharpe_eta)
        self._t = self._end = market.first
        self._reset_portfolio()

    def _reset_portfolio(self) -> None:
        cash = self.settings.initial_cash
        self._cash, self._units, self._entry, self._equity, self._peak = cash, 0.0, 0.0, cash, cash
        self._reward_state = self._reward.initial_state(cash)

    @property
    def t(self) -> int:
        return self._t

    @property
    def equity(self) -> float:
        return self._equity

    @property
    def portfolio(self) -> execution.Portfolio:
        return execution.Portfolio(self._cash, self._units)

    def _observe(self) -> np.ndarray:
        obs = self._obs_rows[self._t].copy()
        units = self._units
        if units:
            price = self._close[self._t]
            obs[-2] = units * price / self._equity if self._equity > 0 else 0.0
            obs[-1] = (price / self._entry - 1.0) if units > 0 else (1.0 - price / self._entry)
        return obs

    def _target(self, action) -> float:
        if self._discrete:
            return self._positions[action]
        limit = self.settings.max_position
        return execution.clip_weight(float(action[0]) * limit, limit)

    def _trade(self, target: float, price: float, rate: float) -> float:
        before = self._units
        self._cash, units, cost = execution.fill(self._cash, before, target, price, rate)
        if units != before:
            self._entry = execution.entry_price_after(before, self._entry, units, price)
            self._units = units
        return cost

    def _protect(self, bar: int, rate: float) -> float:
        """Stop-loss / take-profit on bar ``bar``'s range; returns the cost of an exit (or 0)."""
        exit_price = execution.protective_exit(
            self._units,
            self._entry,
            self._open[bar],
            self._high[bar],
            self._low[bar],
            self.settings.stop_loss,
            self.settings.take_profit,
        )
        return 0.0 if exit_price is None else self._trade(0.0, exit_price, rate)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._t, self._end = episode_bounds(
            self.mode, self.market.first, len(self._close), self.settings.episode_length, self.np_random
        )
        self._reset_portfolio()
        return self._observe(), {"equity": self._equity}

    def step(self, action):
        t = self._t
        nxt = t + 1
        rate = self._rates[t]
        target = self._positions[action] if self._discrete else self._target(action)
        if self._protective and not self._fill_at_open:
            cost = self._protect(nxt, rate) + self._trade(target, self._fill_prices[nxt], rate)
        else:
            cost = self._trade(target, self._fill_prices[nxt], rate)
            if self._protective:
                cost += self._protect(nxt, rate)
        close = self._close[nxt]
        if self._borrow_rate and self._units < 0:
            fee = execution.borrow_cost(self._units, close, self._borrow_rate)
            self._cash -= fee
            cost += fee
        self._t = nxt
        previous = self._equity
        equity = self._equity = self._cash + self._units * close
        if equity > self._peak:
            self._peak = equity
        reward, self._reward_state = self._reward_step(
            self._reward_state, previous, equity, self._reward_params
        )
        terminated = equity <= self._ruin_equity
        if self._max_drawdown is not None and equity < (1.0 - self._max_drawdown) * self._peak:
            cost += self._trade(0.0, close, rate)  # the kill switch flattens at the close it saw
            self._equity = self._cash
            terminated = True
        truncated = not terminated and nxt >= self._end
        info = {"equity": self._equity, "cost": cost, "position": target, "units": self._units}
        return self._observe(), reward, terminated, truncated, info
