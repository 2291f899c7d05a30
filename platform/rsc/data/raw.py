"""What every bar source delivers, and how it fails: the contract sources and their users share.

Kept apart from the sources themselves so that a provider module (``rsc.data.yahoo``) and the source
factory (``rsc.data.sources``) both import it, and neither imports the other's caller.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date
from typing import NamedTuple, Protocol

import numpy as np
import pandas as pd

ALL = "*"  # data.symbols: ["*"] = every symbol the source holds


class SourceError(ValueError):
    """A source could not deliver: missing file or symbol, unreadable file, provider error."""


class RawBars(NamedTuple):
    """One symbol's unvalidated bars, where they came from (named in every error) and its hash."""

    symbol: str
    origin: str
    frame: pd.DataFrame
    sha256: str  # of the bytes the provider delivered (lineage of the bars dataset)


class CleanBars(NamedTuple):
    """One symbol's bars that passed every check as read (a clean file: no frame built for them).

    What :func:`rsc.data.validate.check_bars` would return, as arrays: the ingest stores them as they
    are. Row ``i`` is the file's data row ``first_row + i``.
    """

    symbol: str
    origin: str
    stamps: np.ndarray  # datetime64[ns], strictly ascending: dates, or UTC instants
    prices: dict[str, np.ndarray]  # the OHLCV columns, float64
    sha256: str
    first_row: int = 0

    def between(self, start: date, end: date) -> CleanBars:
        """The bars with ``start <= timestamp <= end`` (dates inclusive; one slice, the stamps are sorted)."""
        after = np.datetime64(end, "ns") + np.timedelta64(1, "D")
        first, stop = np.searchsorted(self.stamps, [np.datetime64(start, "ns"), after])
        if first == 0 and stop == len(self.stamps):
            return self
        prices = {name: values[first:stop] for name, values in self.prices.items()}
        return self._replace(stamps=self.stamps[first:stop], prices=prices, first_row=self.first_row + first)


class BarSource(Protocol):
    """A provider of bars; adding one is one class with this method."""

    def fetch(self, symbols: Sequence[str]) -> Iterator[RawBars]:
        """Raw bars of each symbol (``["*"]``: every symbol the source holds), one at a time."""
        ...
