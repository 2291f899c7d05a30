"""The single-asset trading environment ``rsc/Trading-v0``."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import gymnasium as gym
import numpy as np
import pandas as pd

from rsc.config.settings import EnvSettings
from rsc.core import execution, observation
from rsc.core.rewards import REWARDS
from rsc.core.schema import CLOSE, OPEN, PART, TIMESTAMP

ENV_ID = "rsc/Trading-v0"


class MarketArrays(NamedTuple):
    """Preloaded, contiguous arrays of one symbol; ``first`` is the first tradable bar.

    Rows before ``first`` are context only: they feed the observation window of the first bars.
    """

    features: np.ndarray  # [T, F] scaled features
    open: np.ndarray  # [T]
    close: np.ndarray  # [T]
    timestamps: np.ndarray  # [T] datetime64
    first: int

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, scaler: dict, part: str | None, window: int) -> MarketArrays:
        """Rows of ``part`` (all rows if None) plus up to ``window - 1`` earlier rows as context.

        Args:
            frame: one symbol's features dataset (with a ``part`` column when ``part`` is given).
            scaler: ``{"columns", "mean", "std"}`` fitted on the training part.
        """
        frame = frame.sort_values(TIMESTAMP).reset_index(drop=True)
        if part is None:
            start, stop = 0, len(frame)
        else:
            rows = np.flatnonzero(frame[PART].to_numpy() == part)
            if len(rows) == 0:
                raise ValueError(f"no rows of part {part!r} in the dataset")
            start, stop = int(rows[0]), int(rows[-1]) + 1
        begin = max(0, start - (window - 1))
        if start - begin < window - 1:
            start = begin + window - 1  # not enough history: trade from the first full window
        sliced = frame.iloc[begin:stop]
        if len(sliced) - (start - begin) < 2:
            raise ValueError(f"part {part!r} has fewer than 2 tradable bars after a {window}-bar window")
        return cls(
            features=np.ascontiguousarray(
                observation.scale(
                    sliced[scaler["columns"]].to_numpy(np.float64),
                    np.asarray(scaler["mean"]),
                    np.asarray(scaler["std"]),
                ),
                dtype=np.float32,
            ),
            open=np.ascontiguousarray(sliced[OPEN].to_numpy(np.float64)),
            close=np.ascontiguousarray(sliced[CLOSE].to_numpy(np.float64)),
            timestamps=sliced[TIMESTAMP].to_numpy(),
            first=start - begin,
        )


class TradingEnv(gym.Env):
    """Trade one asset by choosing a target position each bar.

    Description:
        At bar ``t`` the agent sees features up to ``t`` and picks a target position (a fraction of
        equity). The order fills at bar ``t + 1``'s open with commission and slippage on the traded
        notional (:mod:`rsc.core.execution`); the portfolio is marked at ``t + 1``'s close.

    Observation Space:
        ``Box(window * F + 1)``: the last ``window`` rows of scaled features, flattened, then the
        current position weight.

    Action Space:
        ``Discrete(len(positions))``: index into ``EnvSettings.positions``.

    Rewards:
        Chosen by name from :data:`rsc.core.rewards.REWARDS` (default: log return of equity).

    Episode End:
        Terminated when equity falls below ``ruin_fraction`` of the initial cash; truncated at the
        end of the episode slice (training) or of the data (evaluation).

    Arguments:
        market: preloaded arrays; settings: EnvSettings; mode: ``"train"`` (random starts,
        fixed length) or ``"eval"`` (one full pass from ``market.first``).

    Version History:
        v0: first version.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 - Gymnasium's class attribute

    def __init__(self, market: MarketArrays, settings: EnvSettings, mode: Literal["train", "eval"] = "train"):
        if settings.reward not in REWARDS:
            raise ValueError(f"unknown reward {settings.reward!r}; known: {sorted(REWARDS)}")
        self.market, self.settings, self.mode = market, settings, mode
        self._positions = np.asarray(settings.positions, dtype=np.float64)
        self._costs = execution.Costs(settings.commission_bps, settings.slippage_bps)
        self._reward = REWARDS[settings.reward]
        size = observation.observation_size(settings.window, market.features.shape[1])
        bound = observation.FEATURE_CLIP
        self.observation_space = gym.spaces.Box(-bound, bound, shape=(size,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(len(self._positions))
        self._t = self._end = market.first
        self._portfolio = execution.Portfolio(settings.initial_cash)
        self._equity = settings.initial_cash

    @property
    def t(self) -> int:
        return self._t

    @property
    def equity(self) -> float:
        return self._equity

    def _observe(self) -> np.ndarray:
        weight = execution.position_weight(self._portfolio, self.market.close[self._t])
        return observation.observe(self.market.features, self._t, self.settings.window, weight)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        last = len(self.market.close) - 1
        if self.mode == "train" and last - self.market.first > self.settings.episode_length:
            self._t = int(self.np_random.integers(self.market.first, last - self.settings.episode_length + 1))
            self._end = self._t + self.settings.episode_length
        else:
            self._t, self._end = self.market.first, last
        self._portfolio = execution.Portfolio(self.settings.initial_cash)
        self._equity = self.settings.initial_cash
        return self._observe(), {"equity": self._equity}

    def step(self, action):
        target = self._positions[int(action)]
        self._portfolio, cost = execution.rebalance(
            self._portfolio, target, self.market.open[self._t + 1], self._costs
        )
        self._t += 1
        previous, self._equity = self._equity, execution.equity(self._portfolio, self.market.close[self._t])
        reward = self._reward(previous, self._equity)
        terminated = self._equity <= self.settings.ruin_fraction * self.settings.initial_cash
        truncated = not terminated and self._t >= self._end
        info = {"equity": self._equity, "cost": cost, "position": float(target)}
        return self._observe(), reward, terminated, truncated, info
