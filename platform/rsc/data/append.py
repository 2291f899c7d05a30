"""Incremental ingest: new bars on top of a dataset's stored version, history never silently rewritten.

A feed or an export usually repeats the bars already stored and adds a few new ones. The stored bars
are kept, the new ones appended; a bar present in both must carry the same values, else the ingest
stops and names the first difference (a provider that restated prices, or a file of another
instrument), unless ``data.restate`` asks for the new values to replace the stored ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rsc.core.schema import OHLCV_COLUMNS, SYMBOL, TIMESTAMP


class RestateError(ValueError):
    """Bars that overlap the stored version with different values (and restating was not asked for)."""


@dataclass
class AppendReport:
    """Per symbol: bars appended, restated (replaced) and already stored."""

    appended: dict[str, int] = field(default_factory=dict)
    restated: dict[str, int] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        total = sum(self.appended.values())
        changed = sorted(s for s in self.appended if self.appended[s] or self.restated.get(s))
        restated = sum(self.restated.values())
        text = f"{total} new bar(s) on {len(changed)} symbol(s) {changed}" if changed else "no new bars"
        return text + (f", {restated} restated" if restated else "")


def merge_bars(
    stored: pd.DataFrame, fetched: pd.DataFrame, restate: bool = False
) -> tuple[pd.DataFrame, AppendReport]:
    """The stored bars of the fetched symbols plus the fetched ones, sorted by (symbol, timestamp).

    Raises:
        RestateError: a fetched bar differs from the stored bar at the same time (``restate`` False).
    """
    report = AppendReport()
    parts = []
    for symbol, new in fetched.groupby(SYMBOL, sort=True):
        old = stored[stored[SYMBOL] == symbol]
        if old.empty:
            report.appended[str(symbol)] = len(new)
            parts.append(new)
            continue
        both = old.merge(new, on=TIMESTAMP, suffixes=("_stored", "_new"))
        stored_values = both[[f"{c}_stored" for c in OHLCV_COLUMNS]].to_numpy(np.float64)
        new_values = both[[f"{c}_new" for c in OHLCV_COLUMNS]].to_numpy(np.float64)
        differs = ~np.isclose(stored_values, new_values, rtol=1e-12, atol=0.0).all(axis=1)
        if differs.any() and not restate:
            row = both[differs].iloc[0]
            detail = ", ".join(
                f"{c} {row[f'{c}_stored']:g} -> {row[f'{c}_new']:g}"
                for c in OHLCV_COLUMNS
                if not np.isclose(row[f"{c}_stored"], row[f"{c}_new"], rtol=1e-12, atol=0.0)
            )
            raise RestateError(
                f"{symbol}: {int(differs.sum())} bar(s) already stored differ from the new ones, first at "
                f"{row[TIMESTAMP]} ({detail}); nothing was written. If the provider restated its history, "
                "set data.restate=true to replace the stored bars"
            )
        kept = old[~old[TIMESTAMP].isin(new[TIMESTAMP])]
        report.appended[str(symbol)] = int((~new[TIMESTAMP].isin(old[TIMESTAMP])).sum())
        report.restated[str(symbol)] = int(differs.sum())
        report.kept[str(symbol)] = len(kept) + len(both) - int(differs.sum())
        parts.append(pd.concat([kept, new[list(kept.columns)]], ignore_index=True))
    merged = pd.concat(parts, ignore_index=True).sort_values([SYMBOL, TIMESTAMP], kind="stable")
    return merged.reset_index(drop=True), report
