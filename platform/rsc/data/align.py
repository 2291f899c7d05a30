"""Several symbols on one calendar, by a stated policy (``data.align``), for a portfolio.

A portfolio decides on every asset at once, so every symbol needs a row at every bar it is offered.
Symbols trade on different calendars (an index and a stock listed years later; an equity beside a
24/7 crypto series), so the rows are aligned before the split:

- ``intersection``: only the timestamps every symbol has; each symbol loses its other bars.
- ``union``: every timestamp once all symbols have started trading; a symbol's missing bars are
  forward-filled from its last bar (prices flat at the last close, features unchanged) and marked
  untradeable, so its position is held, never traded, at a price it did not print.

Either way the aligned frame has a ``tradable`` column, and :class:`Alignment` says which bars each
symbol lost or gained (the split manifest and the report carry it).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from rsc.core.schema import CLOSE, HIGH, LOW, OPEN, PART, SYMBOL, TIMESTAMP, TRADABLE

AlignPolicy = Literal["intersection", "union"]


class SymbolAlignment(BaseModel):
    model_config = ConfigDict(frozen=True)

    bars: int  # the symbol's own bars before alignment
    dropped: int  # its bars outside the aligned calendar
    filled: int  # aligned bars it did not trade (forward-filled, untradeable)


class Alignment(BaseModel):
    """What aligning did: the policy, the shared calendar and each symbol's lost and filled bars."""

    model_config = ConfigDict(frozen=True)

    policy: AlignPolicy
    bars: int
    start: str | None
    end: str | None
    symbols: dict[str, SymbolAlignment]

    def summary(self) -> str:
        per_symbol = ", ".join(
            f"{name} -{s.dropped}/+{s.filled}" for name, s in self.symbols.items() if s.dropped or s.filled
        )
        return (
            f"{self.policy} of {len(self.symbols)} symbols: {self.bars} bars {self.start} .. {self.end}"
            + (
                f" (bars dropped/forward-filled: {per_symbol})"
                if per_symbol
                else " (no bar dropped or filled)"
            )
        )


def align_symbols(frame: pd.DataFrame, policy: AlignPolicy) -> tuple[pd.DataFrame, Alignment]:
    """``frame`` (one row per symbol and bar) on one calendar, sorted by (timestamp, symbol).

    Raises:
        ValueError: an unknown policy, or symbols whose bars never overlap.
    """
    if policy not in ("intersection", "union"):
        raise ValueError(f"data.align must be 'intersection' or 'union', got {policy!r}")
    frame = frame.drop(columns=[TRADABLE], errors="ignore")
    symbols = sorted(frame[SYMBOL].unique())
    own = {name: rows.set_index(TIMESTAMP) for name, rows in frame.groupby(SYMBOL, sort=True)}
    if policy == "intersection":
        calendar = pd.Index(sorted(set.intersection(*(set(rows.index) for rows in own.values()))))
    else:
        latest_start = max(rows.index.min() for rows in own.values())
        everything = pd.Index(sorted(set().union(*(set(rows.index) for rows in own.values()))))
        calendar = everything[everything >= latest_start]
    if len(calendar) == 0:
        spans = ", ".join(f"{n} {r.index.min()} .. {r.index.max()}" for n, r in own.items())
        raise ValueError(f"data.align={policy}: the symbols share no bar ({spans})")
    parts = _parts_by_time(frame, calendar) if PART in frame.columns else None
    aligned, report = [], {}
    for name in symbols:
        rows = own[name]
        traded = calendar.isin(rows.index)
        placed = rows.reindex(rows.index.union(calendar)).ffill().reindex(calendar)
        for column in (OPEN, HIGH, LOW):
            if column in placed.columns:
                placed.loc[~traded, column] = placed.loc[~traded, CLOSE]
        if "volume" in placed.columns:
            placed.loc[~traded, "volume"] = 0.0
        placed[SYMBOL] = name
        placed[TRADABLE] = traded
        if parts is not None:
            placed[PART] = parts
        aligned.append(placed.rename_axis(TIMESTAMP).reset_index())
        report[name] = SymbolAlignment(
            bars=len(rows), dropped=int((~rows.index.isin(calendar)).sum()), filled=int((~traded).sum())
        )
    out = pd.concat(aligned, ignore_index=True).sort_values([TIMESTAMP, SYMBOL], kind="stable")
    out = out[[*frame.columns, TRADABLE]].reset_index(drop=True)
    return out, Alignment(
        policy=policy,
        bars=len(calendar),
        start=str(calendar[0]),
        end=str(calendar[-1]),
        symbols=report,
    )


def _parts_by_time(frame: pd.DataFrame, calendar: pd.Index) -> np.ndarray:
    """The split part of each calendar bar (the split assigns parts by time, alike for every symbol)."""
    by_time = frame.drop_duplicates(TIMESTAMP).set_index(TIMESTAMP)[PART]
    return by_time.reindex(calendar).to_numpy()
