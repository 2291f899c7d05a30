"""Reward functions, chosen by name in config (``env.reward``).

A reward is a small object: ``reset(initial_equity)`` at the start of an episode, then
``step(previous_equity, current_equity) -> reward`` once a bar. Each env owns its reward object, which
holds the reward's state (a running peak, moving moments); the call is two floats in, one float out
because it runs inside every env step.
"""

from __future__ import annotations

from collections.abc import Callable
from math import log
from typing import Protocol

RUIN_REWARD = -10.0  # log return of a wiped-out account is -inf; a large finite penalty keeps learning stable


class Reward(Protocol):
    def reset(self, initial_equity: float) -> None: ...

    def step(self, previous: float, current: float) -> float: ...


def _log_return(previous: float, current: float) -> float:
    return log(current / previous) if current > 0.0 and previous > 0.0 else RUIN_REWARD


class LogReturn:
    """log(E_t / E_{t-1}); sums to the episode's log growth."""

    def reset(self, initial_equity: float) -> None:
        pass

    step = staticmethod(_log_return)  # stateless: the plain function, no method call in between


class DrawdownPenalty:
    """Log return minus ``weight`` x the increase of the drawdown from the running peak.

    Only a deepening drawdown is penalised, so recovering is not punished twice.
    """

    def __init__(self, weight: float):
        self.weight = weight
        self.peak, self.drawdown = 0.0, 0.0

    def reset(self, initial_equity: float) -> None:
        self.peak, self.drawdown = initial_equity, 0.0

    def step(self, previous: float, current: float) -> float:
        self.peak = max(self.peak, current)
        drawdown = 1.0 - current / self.peak if self.peak > 0 else 1.0
        penalty = self.weight * max(0.0, drawdown - self.drawdown)
        self.drawdown = drawdown
        return _log_return(previous, current) - penalty


class DifferentialSharpe:
    """Differential Sharpe ratio (Moody & Saffell, "Learning to Trade via Direct Reinforcement", 2001).

    With exponential moving moments ``A`` (returns) and ``B`` (squared returns) of rate ``eta``:
    ``D_t = (B_{t-1} dA - A_{t-1} dB / 2) / (B_{t-1} - A_{t-1}^2)^{3/2}``, ``dA = R_t - A_{t-1}``,
    ``dB = R_t^2 - B_{t-1}``. Zero until the moments have a positive variance.
    """

    def __init__(self, eta: float, risk_free_per_bar: float = 0.0):
        self.eta, self.risk_free = eta, risk_free_per_bar
        self.first, self.second = 0.0, 0.0

    def reset(self, initial_equity: float) -> None:
        self.first, self.second = 0.0, 0.0

    def step(self, previous: float, current: float) -> float:
        first, second = self.first, self.second
        # The excess return over the risk-free rate, as in every Sharpe-type figure of the platform.
        ret = (current / previous - 1.0 if previous > 0 else -1.0) - self.risk_free
        delta_first, delta_second = ret - first, ret * ret - second
        variance = second - first * first
        reward = 0.0
        if variance > 1e-12:
            reward = (second * delta_first - 0.5 * first * delta_second) / variance**1.5
        self.first, self.second = first + self.eta * delta_first, second + self.eta * delta_second
        return reward


# name -> factory(drawdown_penalty, sharpe_eta, risk-free rate per bar); each reward takes the
# parameters that concern it.
REWARDS: dict[str, Callable[[float, float, float], Reward]] = {
    "log_return": lambda drawdown_penalty, sharpe_eta, rf: LogReturn(),
    "drawdown_penalty": lambda drawdown_penalty, sharpe_eta, rf: DrawdownPenalty(drawdown_penalty),
    "diff_sharpe": lambda drawdown_penalty, sharpe_eta, rf: DifferentialSharpe(sharpe_eta, rf),
}


def make_reward(
    name: str, drawdown_penalty: float = 0.0, sharpe_eta: float = 0.01, risk_free_per_bar: float = 0.0
) -> Reward:
    """The reward called ``name``; an unknown name is one error listing the known ones."""
    if name not in REWARDS:
        raise ValueError(f"unknown reward {name!r}; known: {sorted(REWARDS)}")
    return REWARDS[name](drawdown_penalty, sharpe_eta, risk_free_per_bar)
