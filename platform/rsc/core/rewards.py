"""Reward functions, chosen by name in config (``env.reward``).

Each takes the previous and current equity and returns the reward.
"""

from __future__ import annotations

import math
from collections.abc import Callable


def log_return(previous_equity: float, current_equity: float) -> float:
    """log(E_t / E_{t-1}); sums to the log growth of the episode."""
    if current_equity <= 0 or previous_equity <= 0:
        return -10.0
    return math.log(current_equity / previous_equity)


REWARDS: dict[str, Callable[[float, float], float]] = {
    "log_return": log_return,
}
