"""Feature datasets: the ``rsc.core.features`` kernels applied per symbol to a bars frame.

Symbols of equal length go through the kernels together, as ``[N, T]`` blocks of a few tens of
thousands of bars (small enough that the kernels' temporaries stay in cache), on every core; each
symbol's values are exactly those it gets alone.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from rsc.config.settings import FeatureSettings
from rsc.core.features import Bars, IndicatorRef, compute_features, feature_names
from rsc.core.schema import OHLCV_COLUMNS, SYMBOL, TIMESTAMP
from rsc.data.parallel import ordered_map
from rsc.data.progress import Track, untracked

BLOCK_BARS = 1 << 15  # bars per block of equal-length symbols (at least one symbol per block)


def indicator_refs(settings: FeatureSettings) -> list[IndicatorRef]:
    """Checked refs (unknown names or parameters fail here, before any bar is read)."""
    return [IndicatorRef.of(spec.name, spec.window, spec.params) for spec in settings.indicators]


def _blocks(bounds: list[int]) -> list[tuple[int, int, int]]:
    """(first row, rows, symbols) of runs of consecutive equal-length symbols, each up to
    :data:`BLOCK_BARS` bars; ``bounds`` are the symbols' first rows and the total."""
    blocks: list[tuple[int, int, int]] = []
    for start, stop in itertools.pairwise(bounds):
        size = stop - start
        if blocks:
            first, rows, count = blocks[-1]
            if rows == size * count and rows + size <= BLOCK_BARS:
                blocks[-1] = (first, rows + size, count + 1)
                continue
        blocks.append((start, size, 1))
    return blocks


def add_features(bars: pd.DataFrame, settings: FeatureSettings, track: Track = untracked) -> pd.DataFrame:
    """Bars plus one column per indicator; warm-up rows (any NaN feature) are dropped.

    Each symbol's indicators see only that symbol's bars, in time order.
    """
    refs = indicator_refs(settings)
    names = feature_names(refs)
    ordered = bars.sort_values([SYMBOL, TIMESTAMP], kind="stable", ignore_index=True)
    columns = [ordered[c].to_numpy(dtype=np.float64) for c in OHLCV_COLUMNS]
    symbols = ordered[SYMBOL].to_numpy()
    starts = np.flatnonzero(np.r_[True, symbols[1:] != symbols[:-1]]) if len(symbols) else np.array([], int)
    blocks = _blocks([*starts.tolist(), len(symbols)])
    values = np.empty((len(ordered), len(names)))

    def compute(block: tuple[int, int, int]) -> None:
        first, rows, count = block
        one = Bars(*(x[first : first + rows].reshape(count, rows // count) for x in columns))
        values[first : first + rows] = compute_features(one, refs).reshape(rows, len(names))

    for _ in track(ordered_map(compute, blocks), "features", len(blocks)):
        pass
    keep = ~np.isnan(values).any(axis=1)
    out = ordered.loc[keep].reset_index(drop=True)
    return pd.concat([out, pd.DataFrame(values[keep], columns=names)], axis=1)
