"""Causal technical indicators over one symbol's bars.

Every kernel uses trailing windows only, so the value at bar ``t`` depends on bars ``<= t``; the
first ``warmup`` values are NaN. Inputs are ``[T]`` float arrays (time on axis 0).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
from scipy.signal import lfilter

from rsc.core.schema import CLOSE, HIGH, LOW, OPEN, VOLUME


class Bars(NamedTuple):
    """One symbol's OHLCV arrays, each ``[T]``."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    @classmethod
    def from_columns(cls, columns: dict[str, np.ndarray]) -> Bars:
        return cls(
            *(np.asarray(columns[name], dtype=np.float64) for name in (OPEN, HIGH, LOW, CLOSE, VOLUME))
        )


def _first_finite(x: np.ndarray) -> int:
    finite = np.flatnonzero(np.isfinite(x))
    return int(finite[0]) if len(finite) else len(x)


def _rolling_sum(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing sum over ``window`` bars; NaN until the window is full (leading NaNs are skipped).

    Prefix sums keep it causal: the value at ``t`` only ever reads ``x[:t + 1]``.
    """
    out = np.full(x.shape, np.nan)
    start = _first_finite(x)
    tail = x[start:]
    if len(tail) >= window:
        csum = np.cumsum(np.concatenate([[0.0], tail]))
        out[start + window - 1 :] = csum[window:] - csum[:-window]
    return out


def rolling_mean(x: np.ndarray, window: int) -> np.ndarray:
    return _rolling_sum(x, window) / window


def rolling_std(x: np.ndarray, window: int) -> np.ndarray:
    """Sample standard deviation (ddof=1) over a trailing window."""
    if window < 2:
        return np.full(x.shape, np.nan)
    start = _first_finite(x)
    centred = x - (x[start] if start < len(x) else 0.0)  # a causal shift keeps the sums small
    mean = _rolling_sum(centred, window) / window
    mean_sq = _rolling_sum(centred * centred, window) / window
    var = np.maximum(mean_sq - mean * mean, 0.0) * window / (window - 1)
    return np.sqrt(var)


def log_return(bars: Bars, window: int) -> np.ndarray:
    """log(close_t / close_{t-window})."""
    out = np.full(bars.close.shape, np.nan)
    out[window:] = np.log(bars.close[window:] / bars.close[:-window])
    return out


def sma_ratio(bars: Bars, window: int) -> np.ndarray:
    """close_t / SMA_window(close)_t - 1."""
    return bars.close / rolling_mean(bars.close, window) - 1.0


def rsi(bars: Bars, window: int) -> np.ndarray:
    """Wilder's RSI scaled to [0, 1]; Wilder smoothing is an EMA with alpha = 1/window.

    Seeded with the simple mean of the first ``window`` changes (Wilder, 1978).
    """
    change = np.diff(bars.close)
    gain, loss = np.maximum(change, 0.0), np.maximum(-change, 0.0)
    out = np.full(bars.close.shape, np.nan)
    if len(change) < window:
        return out
    avg_gain = _wilder_average(gain, window)
    avg_loss = _wilder_average(loss, window)
    total = avg_gain + avg_loss
    with np.errstate(invalid="ignore", divide="ignore"):
        out[window:] = np.where(total == 0, 0.5, avg_gain / total)
    return out


def _wilder_average(x: np.ndarray, window: int) -> np.ndarray:
    """Wilder smoothing of ``x[window-1:]``: seeded with mean(x[:window]), then alpha = 1/window."""
    alpha = 1.0 / window
    seed = x[:window].mean()
    rest = lfilter([alpha], [1.0, -(1.0 - alpha)], x[window:], zi=[(1.0 - alpha) * seed])[0]
    return np.concatenate([[seed], rest])


def volatility(bars: Bars, window: int) -> np.ndarray:
    """Realised volatility: sample std of 1-bar log returns over the window (not annualised)."""
    return rolling_std(log_return(bars, 1), window)


INDICATORS: dict[str, Callable[[Bars, int], np.ndarray]] = {
    "log_return": log_return,
    "sma_ratio": sma_ratio,
    "rsi": rsi,
    "volatility": volatility,
}


class IndicatorRef(NamedTuple):
    name: str
    window: int

    @property
    def column(self) -> str:
        return f"{self.name}_{self.window}"


def feature_names(specs: Sequence[IndicatorRef]) -> list[str]:
    return [IndicatorRef(s.name, s.window).column for s in specs]


def compute_features(bars: Bars, specs: Sequence[IndicatorRef]) -> np.ndarray:
    """All indicators of ``specs`` for one symbol: ``[T, F]``, NaN during warm-up."""
    unknown = [s.name for s in specs if s.name not in INDICATORS]
    if unknown:
        raise ValueError(f"unknown indicator(s) {unknown}; known: {sorted(INDICATORS)}")
    columns = [INDICATORS[s.name](bars, s.window) for s in specs]
    return np.column_stack(columns) if columns else np.empty((len(bars.close), 0))


def warmup_bars(specs: Sequence[IndicatorRef]) -> int:
    """Bars needed before every indicator is defined (an upper bound)."""
    return max((s.window + 1 for s in specs), default=0)
