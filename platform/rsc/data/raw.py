"""What every bar source delivers, and how it fails: the contract sources and their users share.

Kept apart from the sources themselves so that a provider module (``rsc.data.yahoo``) and the source
factory (``rsc.data.sources``) both import it, and neither imports the other's caller.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple, Protocol

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


class BarSource(Protocol):
    """A provider of bars; adding one is one class with this method."""

    def fetch(self, symbols: Sequence[str]) -> Iterator[RawBars]:
        """Raw bars of each symbol (``["*"]``: every symbol the source holds), one at a time."""
        ...
