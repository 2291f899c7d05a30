"""Benchmark strategies run through the same execution and cost code as the policy."""

from __future__ import annotations

import numpy as np

from rsc.core.execution import Costs, Trajectory, simulate


def buy_and_hold(open_: np.ndarray, close: np.ndarray, costs: Costs, initial_cash: float) -> Trajectory:
    """Fully long from the first fill on: decisions of 1.0 on every bar ``[T]``."""
    return simulate(np.ones(len(close)), open_, close, costs, initial_cash)
