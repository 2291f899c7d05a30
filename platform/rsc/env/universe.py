"""One single-asset policy trained across a universe of symbols: ``rsc/Trading-v0`` per symbol, one
symbol per episode.

Each episode samples a symbol, then a start, and trades that symbol's bars with the single-asset env's
execution, costs and reward. The observation is the single-asset one, so the policy learns behaviour
that does not depend on which symbol it trades; with ``env.symbol_embedding`` a one-hot of the symbol
(in the sorted order of the universe) follows it, and the policy may learn per-symbol behaviour.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from rsc.config.settings import EnvSettings
from rsc.env.market import MarketArrays
from rsc.env.trading import TradingEnv


class UniverseEnv(gym.Env):
    """``rsc/Trading-v0`` over several symbols: ``reset`` picks one (``options={"symbol": ...}`` names it)."""

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 - Gymnasium's class attribute

    def __init__(
        self,
        markets: Mapping[str, MarketArrays],
        settings: EnvSettings,
        mode: Literal["train", "eval"] = "train",
        risk_free_rate: float = 0.0,
    ):
        if len(markets) < 2:
            raise ValueError("a universe needs two or more symbols; one symbol is rsc/Trading-v0 itself")
        self.symbols = tuple(sorted(markets))
        self.envs = {s: TradingEnv(markets[s], settings, mode, risk_free_rate) for s in self.symbols}
        self.settings, self.mode = settings, mode
        self.embedding = settings.symbol_embedding
        inner = self.envs[self.symbols[0]].observation_space
        extra = len(self.symbols) if self.embedding else 0
        self.observation_space = gym.spaces.Box(
            float(inner.low.min()), float(inner.high.max()), shape=(inner.shape[0] + extra,), dtype=np.float32
        )
        self.action_space = self.envs[self.symbols[0]].action_space
        self._codes = {s: np.eye(len(self.symbols), dtype=np.float32)[i] for i, s in enumerate(self.symbols)}
        self.symbol = self.symbols[0]

    @property
    def current(self) -> TradingEnv:
        return self.envs[self.symbol]

    def observe(self, symbol: str, obs: np.ndarray) -> np.ndarray:
        """The single-asset observation of ``symbol`` as this env hands it out (its one-hot appended)."""
        return np.concatenate([obs, self._codes[symbol]]) if self.embedding else obs

    def actor_for(self, symbol: str, act: Callable[[np.ndarray], Any]) -> Callable[[np.ndarray], Any]:
        """``act`` (on this env's observations) as an actor of ``symbol``'s own single-asset env."""
        return (lambda obs: act(self.observe(symbol, obs))) if self.embedding else act

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        named = (options or {}).get("symbol")
        if named is not None and named not in self.envs:
            raise ValueError(f"unknown symbol {named!r}; this universe holds {list(self.symbols)}")
        self.symbol = named or self.symbols[int(self.np_random.integers(len(self.symbols)))]
        obs, info = self.current.reset(seed=int(self.np_random.integers(2**31 - 1)))
        return self.observe(self.symbol, obs), {**info, "symbol": self.symbol}

    def step(self, action):
        obs, reward, terminated, truncated, info = self.current.step(action)
        return self.observe(self.symbol, obs), reward, terminated, truncated, info
