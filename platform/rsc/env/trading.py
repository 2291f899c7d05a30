"""The single-asset trading environment ``rsc/Trading-v0``."""

from __future__ import annotations

from typing import Any, Literal

import gymnasium as gym
import numpy as np

from rsc.config.settings import EnvSettings
from rsc.core import execution, observation
from rsc.core.execution import borrow_cost, fill
from rsc.core.policy_spec import action_spec
from rsc.core.rewards import make_reward
from rsc.env.blocks import OBSERVATION_BLOCK, ObservationBlocks
from rsc.env.costs import env_costs
from rsc.env.market import MarketArrays, episode_bounds

ENV_ID = "rsc/Trading-v0"


class TradingEnv(ObservationBlocks, gym.Env):
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

    def __init__(
        self,
        market: MarketArrays,
        settings: EnvSettings,
        mode: Literal["train", "eval"] = "train",
        risk_free_rate: float = 0.0,
    ):
        self.market, self.settings, self.mode = market, settings, mode
        self.costs = env_costs(settings, market.timestamps)
        self._reward = make_reward(
            settings.reward,
            settings.drawdown_penalty,
            settings.sharpe_eta,
            risk_free_rate / self.costs.periods_per_year,  # a yearly rate, per bar of these bars
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
        self._window_rows = observation.window_rows(market.features, window, extra=observation.POSITION_SLOTS)
        self._obs_width = self._window_rows.shape[1]
        self._first_slot = self._obs_width - observation.POSITION_SLOTS  # where a row's position slots begin
        self._open, self._high = market.open.tolist(), market.high.tolist()
        self._low, self._close = market.low.tolist(), market.close.tolist()
        spread = (
            0.5 * settings.spread_factor * (market.high - market.low) / market.close
            if settings.spread_factor
            else np.zeros(len(market.close))
        )
        # Actions become targets through the policy contract, as in serving and paper trading.
        self._action = action_spec(settings.model_dump())
        self._exits = execution.Exits(
            settings.stop_loss, settings.take_profit, settings.max_drawdown, settings.fill == "next_open"
        )
        positions = list(self._action.targets)
        protective = settings.stop_loss is not None or settings.take_profit is not None
        # What every step reads, unpacked with one attribute load (see step). ``rates[t]`` is the cost
        # rate of an order decided on bar t; positions is None for the continuous action.
        self._step_inputs = (
            protective,
            positions if settings.action == "discrete" else None,
            self._open if settings.fill == "next_open" else self._close,
            self._close,
            (self.costs.rate + spread).tolist(),
            self.costs.borrow_rate_per_bar,
            settings.ruin_fraction * settings.initial_cash,
            self._reward.step,
            settings.max_drawdown,
        )
        self._t = self._end = market.first
        self._start_episode()

    def _start_episode(self) -> None:
        """A fresh portfolio, reward state and observation block at bar ``t``."""
        cash = self.settings.initial_cash
        # The portfolio after the last step: (cash, units, entry price, equity, peak equity). One tuple,
        # replaced each step, so a step reads and writes its state with one attribute access each.
        self._book = (cash, 0.0, 0.0, cash, cash)
        self._reward.reset(cash)
        self._copy_block(self._t)

    @property
    def exits(self) -> execution.Exits:
        """The stop-loss, take-profit and drawdown limit; the backtester applies the same."""
        return self._exits

    @property
    def t(self) -> int:
        return self._t

    @property
    def equity(self) -> float:
        return self._book[3]

    @property
    def portfolio(self) -> execution.Portfolio:
        return execution.Portfolio(self._book[0], self._book[1])

    def _continuous_target(self, action) -> float:
        return self._action.decode(action)

    def _fill_with_exits(
        self, cash: float, units: float, entry: float, target: float, bar: int, rate: float
    ) -> tuple[float, float, float, float]:
        """The order and the protective exit of bar ``bar`` (the backtester's own kernel)."""
        return execution.fill_with_exits(
            cash, units, entry, target, self._open[bar], self._high[bar], self._low[bar], self._close[bar],
            rate, self._exits,
        )  # fmt: skip

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._t, self._end = episode_bounds(
            self.mode, self.market.first, len(self._close), self.settings.episode_length, self.np_random
        )
        self._start_episode()
        return self._rows[0], {"equity": self.settings.initial_cash}

    def step(self, action):
        (
            protective,
            positions,
            fill_prices,
            closes,
            rates,
            borrow_rate,
            ruin_equity,
            reward_step,
            max_drawdown,
        ) = self._step_inputs
        cash, units, entry, previous, peak = self._book
        t = self._t
        nxt = self._t = t + 1
        rate, close = rates[t], closes[nxt]
        target = positions[action] if positions is not None else self._continuous_target(action)
        if protective:
            cash, units, entry, cost = self._fill_with_exits(cash, units, entry, target, nxt, rate)
        else:
            price = fill_prices[nxt]  # the target weight is sized on equity at the fill price
            cash, units, entry, cost = fill(
                cash, units, entry, target * (cash + units * price) / price, price, rate
            )
        if units < 0.0 and borrow_rate:  # float literals: see rsc.core.execution.fill
            fee = borrow_cost(units, close, borrow_rate)
            cash -= fee
            cost += fee
        equity = cash + units * close
        if equity > peak:
            peak = equity
        reward = reward_step(previous, equity)
        terminated = equity <= ruin_equity
        if max_drawdown is not None and equity < (1.0 - max_drawdown) * peak:
            # The kill switch flattens at the close it saw.
            cash, units, entry, exit_cost = execution.drawdown_stop(cash, units, entry, close, rate)
            cost += exit_cost
            equity, terminated = cash, True
        self._book = (cash, units, entry, equity, peak)
        truncated = not terminated and nxt >= self._end
        i = nxt - self._block_start
        if i >= OBSERVATION_BLOCK:
            self._copy_block(nxt)
            i = 0
        if units:  # the position slots, the row's last two (the block's rows start zeroed there)
            slots, slot = self._slots, i * self._obs_width + self._first_slot
            slots[slot] = units * close / equity if equity > 0.0 else 0.0
            slots[slot + 1] = (close / entry - 1.0) if units > 0.0 else (1.0 - close / entry)
        info = {"equity": equity, "cost": cost, "position": target, "units": units}
        return self._rows[i], reward, terminated, truncated, info
