"""Performance metrics of an equity curve ``[T]``.

Conventions, used everywhere: simple per-bar returns; sample standard deviation (ddof=1);
annualised Sharpe = mean excess per-bar return / std * sqrt(periods_per_year); drawdowns are
positive fractions of the running peak.
"""

from __future__ import annotations

import numpy as np


def bar_returns(equity: np.ndarray) -> np.ndarray:
    equity = np.asarray(equity, dtype=np.float64)
    return equity[1:] / equity[:-1] - 1.0


def total_return(equity: np.ndarray) -> float:
    return float(equity[-1] / equity[0] - 1.0) if len(equity) else 0.0


def sharpe(equity: np.ndarray, periods_per_year: float = 252.0, risk_free_rate: float = 0.0) -> float:
    """Annualised Sharpe ratio; 0.0 when there are fewer than two returns or no variance."""
    returns = bar_returns(equity) - risk_free_rate / periods_per_year
    if len(returns) < 2:
        return 0.0
    std = returns.std(ddof=1)
    if std < 1e-12:
        return 0.0
    return float(returns.mean() / std * np.sqrt(periods_per_year))


def drawdowns(equity: np.ndarray) -> np.ndarray:
    """``[T]`` drawdown from the running peak, as a positive fraction."""
    equity = np.asarray(equity, dtype=np.float64)
    peak = np.maximum.accumulate(equity)
    return 1.0 - equity / peak


def max_drawdown(equity: np.ndarray) -> float:
    return float(drawdowns(equity).max()) if len(equity) else 0.0


def summary(
    equity: np.ndarray, periods_per_year: float = 252.0, risk_free_rate: float = 0.0
) -> dict[str, float]:
    """The headline figures of one equity curve."""
    return {
        "total_return": total_return(equity),
        "sharpe": sharpe(equity, periods_per_year, risk_free_rate),
        "max_drawdown": max_drawdown(equity),
    }
