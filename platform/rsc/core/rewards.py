"""Reward functions, chosen by name in config (``env.reward``).

Each reward is a pure function ``step(state, previous_equity, current_equity, params) -> (reward, state)``
with an initial state: state is passed in and out (a tuple of floats), never hidden in the env.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

RUIN_REWARD = -10.0  # log return of a wiped-out account is -inf; a large finite penalty keeps learning stable


class RewardParams(NamedTuple):
    drawdown_penalty: float = 0.0  # weight of a new drawdown in "drawdown_penalty"
    sharpe_eta: float = 0.01  # adaptation rate of the moving moments in "diff_sharpe"


def _log_return(previous: float, current: float) -> float:
    if current <= 0 or previous <= 0:
        return RUIN_REWARD
    return math.log(current / previous)


def log_return(state: tuple, previous: float, current: float, params: RewardParams) -> tuple[float, tuple]:
    """log(E_t / E_{t-1}); sums to the episode's log growth."""
    if current <= 0 or previous <= 0:
        return RUIN_REWARD, state
    return math.log(current / previous), state


def drawdown_penalty(
    state: tuple, previous: float, current: float, params: RewardParams
) -> tuple[float, tuple]:
    """Log return minus ``drawdown_penalty`` x the increase of the drawdown from the running peak.

    State: ``(peak, drawdown)``. Only a deepening drawdown is penalised, so recovering is not punished
    twice.
    """
    peak, drawdown = state
    peak = max(peak, current)
    new_drawdown = 1.0 - current / peak if peak > 0 else 1.0
    penalty = params.drawdown_penalty * max(0.0, new_drawdown - drawdown)
    return _log_return(previous, current) - penalty, (peak, new_drawdown)


def diff_sharpe(state: tuple, previous: float, current: float, params: RewardParams) -> tuple[float, tuple]:
    """Differential Sharpe ratio (Moody & Saffell, "Learning to Trade via Direct Reinforcement", 2001).

    With exponential moving moments ``A`` (returns) and ``B`` (squared returns) of rate ``eta``:
    ``D_t = (B_{t-1} dA - A_{t-1} dB / 2) / (B_{t-1} - A_{t-1}^2)^{3/2}``, ``dA = R_t - A_{t-1}``,
    ``dB = R_t^2 - B_{t-1}``. Zero until the moments have a positive variance. State: ``(A, B)``.
    """
    first, second = state
    ret = current / previous - 1.0 if previous > 0 else -1.0
    delta_first, delta_second = ret - first, ret * ret - second
    variance = second - first * first
    reward = (second * delta_first - 0.5 * first * delta_second) / variance**1.5 if variance > 1e-12 else 0.0
    eta = params.sharpe_eta
    return reward, (first + eta * delta_first, second + eta * delta_second)


class Reward(NamedTuple):
    step: Callable[[tuple, float, float, RewardParams], tuple[float, tuple]]
    initial_state: Callable[[float], tuple]  # initial equity -> state


def _no_state(initial_equity: float) -> tuple:
    return ()


def _peak_state(initial_equity: float) -> tuple:
    return (initial_equity, 0.0)


def _moments_state(initial_equity: float) -> tuple:
    return (0.0, 0.0)


REWARDS: dict[str, Reward] = {
    "log_return": Reward(log_return, _no_state),
    "drawdown_penalty": Reward(drawdown_penalty, _peak_state),
    "diff_sharpe": Reward(diff_sharpe, _moments_state),
}
