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
from rsc.core.features import Bars, IndicatorRef, compute_feature_columns, feature_names
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


def _in_symbol_time_order(bars: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """``bars`` sorted by symbol, then time, and each symbol's first row. Frames read from a dataset
    partitioned by symbol come in that order: a pass over integer codes confirms it, sparing the sort."""
    codes, symbols = pd.factorize(bars[SYMBOL], use_na_sentinel=False)
    stamps = bars[TIMESTAMP].to_numpy()
    same = codes[1:] == codes[:-1]
    grouped = symbols.is_monotonic_increasing and (codes[1:] >= codes[:-1]).all()
    if not (grouped and (~same | (stamps[1:] >= stamps[:-1])).all()):
        bars = bars.sort_values([SYMBOL, TIMESTAMP], kind="stable")
        codes, _ = pd.factorize(bars[SYMBOL], use_na_sentinel=False)
        same = codes[1:] == codes[:-1]
    starts = np.flatnonzero(np.r_[True, ~same]) if len(codes) else np.array([], int)
    return bars.reset_index(drop=True), starts


def add_features(bars: pd.DataFrame, settings: FeatureSettings, track: Track = untracked) -> pd.DataFrame:
    """Bars plus one column per indicator; warm-up rows (any NaN feature) are dropped.

    Each symbol's indicators see only that symbol's bars, in time order.
    """
    refs = indicator_refs(settings)
    names = feature_names(refs)
    ordered, starts = _in_symbol_time_order(bars)
    columns = [ordered[c].to_numpy(dtype=np.float64) for c in OHLCV_COLUMNS]
    blocks = _blocks([*starts.tolist(), len(ordered)])
    # Feature by feature, each contiguous: the layout of a pandas float block (and of Arrow columns),
    # so the frame takes it without a transpose; compress keeps it (values[:, keep] would not).
    values = np.empty((len(names), len(ordered)))
    keep = np.empty(len(ordered), bool)

    def compute(block: tuple[int, int, int]) -> None:
        first, rows, count = block
        span = slice(first, first + rows)
        one = Bars(*(x[span].reshape(count, rows // count) for x in columns))
        for out, column in zip(values[:, span], compute_feature_columns(one, refs), strict=True):
            out[:] = column.reshape(rows)
        keep[span] = ~np.isnan(values[:, span]).any(axis=0)

    for _ in track(ordered_map(compute, blocks), "features", len(blocks)):
        pass
    features = pd.DataFrame(values.compress(keep, axis=1).T, columns=names, copy=False)
    return pd.concat([ordered.loc[keep].reset_index(drop=True), features], axis=1)
