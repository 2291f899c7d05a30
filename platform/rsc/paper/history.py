"""The latest bars of each symbol, kept in memory for decision windows and drift measurements."""

from __future__ import annotations

from collections import deque

import numpy as np
import pandas as pd

from rsc.core.schema import OHLCV_COLUMNS, SYMBOL, TIMESTAMP
from rsc.paper.decisions import Window
from rsc.paper.feeds import Step

# Bars kept per symbol: a decision window (warm-up + observation window + indicator lookback) and a
# drift window fit many times over.
MAX_BARS = 2_000


class History:
    def __init__(self, max_bars: int = MAX_BARS):
        self.max_bars = max_bars
        self._rows: dict[str, deque[tuple]] = {}

    def _symbol(self, symbol: str) -> deque[tuple]:
        return self._rows.setdefault(symbol, deque(maxlen=self.max_bars))

    def extend(self, frame: pd.DataFrame) -> None:
        """Add a bars frame (``symbol`` column, any order of symbols, time-sorted per symbol)."""
        ordered = frame.sort_values([SYMBOL, TIMESTAMP], kind="stable")
        stamps = ordered[TIMESTAMP].astype(str).tolist()
        values = ordered[list(OHLCV_COLUMNS)].to_numpy(np.float64).tolist()
        for symbol, stamp, row in zip(ordered[SYMBOL].astype(str), stamps, values, strict=True):
            self._symbol(symbol).append((stamp, *row))

    def add(self, step: Step) -> None:
        for symbol, bar in step.bars.items():
            self._symbol(symbol).append((str(step.timestamp), *bar))

    def count(self, symbol: str) -> int:
        return len(self._rows.get(symbol, ()))

    def window(self, symbol: str, bars: int) -> Window:
        """The latest ``bars`` bars of ``symbol`` (fewer when the history is shorter)."""
        rows = list(self._rows.get(symbol, ()))[-bars:]
        values = np.array([row[1:] for row in rows], dtype=np.float64).reshape(len(rows), len(OHLCV_COLUMNS))
        return Window([row[0] for row in rows], values)
