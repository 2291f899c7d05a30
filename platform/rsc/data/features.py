"""Feature datasets: the ``rsc.core.features`` kernels applied per symbol to bars, as a pyarrow table
(:func:`add_features_table`, the stage's: no pandas round trip of the symbol column) or a pandas
frame (:func:`add_features`, the same through a table).

Symbols of equal length go through the kernels together, as ``[N, T]`` blocks of a few tens of
thousands of bars (small enough that the kernels' temporaries stay in cache), on every core; each
symbol's values are exactly those it gets alone.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pyarrow as pa

from rsc.config.settings import FeatureSettings
from rsc.core.features import Bars, IndicatorRef, compute_feature_columns, feature_names
from rsc.core.schema import OHLCV_COLUMNS, SYMBOL, TIMESTAMP
from rsc.data.parallel import ordered_map
from rsc.data.progress import Track, untracked
from rsc.storage.store import group_starts, symbol_codes

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


def _ordered(codes: np.ndarray, ascending: bool, stamps: np.ndarray) -> bool:
    """Whether rows are grouped by symbol in symbol order and in time order within each symbol
    (``codes`` number the symbols in order of appearance; ``ascending``: that order is sorted)."""
    same = codes[1:] == codes[:-1]
    grouped = ascending and (codes[1:] >= codes[:-1]).all()
    return bool(grouped and (~same | (stamps[1:] >= stamps[:-1])).all())


def _in_symbol_time_order(bars: pa.Table) -> tuple[pa.Table, np.ndarray]:
    """``bars`` sorted by symbol, then time, and each symbol's first row. Bars read from a dataset
    partitioned by symbol come in that order: a pass over integer codes (Arrow's dictionary encoding,
    no Python strings) confirms it, sparing the sort."""
    codes, ascending = symbol_codes(bars.column(SYMBOL))
    if not _ordered(codes, ascending, bars.column(TIMESTAMP).to_numpy()):
        bars = bars.sort_by([(SYMBOL, "ascending"), (TIMESTAMP, "ascending")])
        codes, _ = symbol_codes(bars.column(SYMBOL))
    return bars, group_starts(codes)


def _feature_rows(
    refs: list[IndicatorRef], ohlcv: list[np.ndarray], starts: np.ndarray, track: Track
) -> tuple[np.ndarray, np.ndarray]:
    """The features at the rows past every warm-up, ``[feature, row]`` with each feature contiguous
    (the layout of a pandas float block and of Arrow columns: no transpose to take them), and the mask
    of those rows among the bars ``ohlcv`` (grouped by symbol, each symbol from its ``starts``)."""
    rows = len(ohlcv[0])
    blocks = _blocks([*starts.tolist(), rows])
    values = np.empty((len(feature_names(refs)), rows))
    keep = np.empty(rows, bool)

    def compute(block: tuple[int, int, int]) -> None:
        first, size, count = block
        span = slice(first, first + size)
        one = Bars(*(x[span].reshape(count, size // count) for x in ohlcv))
        for out, column in zip(values[:, span], compute_feature_columns(one, refs), strict=True):
            out[:] = column.reshape(size)
        keep[span] = ~np.isnan(values[:, span]).any(axis=0)

    for _ in track(ordered_map(compute, blocks), "features", len(blocks)):
        pass
    return values.compress(keep, axis=1), keep  # compress keeps each feature contiguous


def add_features(bars: pd.DataFrame, settings: FeatureSettings, track: Track = untracked) -> pd.DataFrame:
    """Bars plus one column per indicator; warm-up rows (any NaN feature) are dropped.

    Each symbol's indicators see only that symbol's bars, in time order.
    """
    table = pa.Table.from_pandas(bars, preserve_index=False)
    return add_features_table(table, settings, track).to_pandas()


def add_features_table(bars: pa.Table, settings: FeatureSettings, track: Track = untracked) -> pa.Table:
    """:func:`add_features` of a pyarrow table, as a table: the stage's bars go from Parquet to the
    kernels and back without pandas (the features are Arrow columns over the computed arrays)."""
    refs = indicator_refs(settings)
    ordered, starts = _in_symbol_time_order(bars)
    ohlcv = [ordered.column(c).cast(pa.float64()).to_numpy() for c in OHLCV_COLUMNS]
    values, keep = _feature_rows(refs, ohlcv, starts, track)
    kept = ordered.filter(pa.array(keep))
    names = [*kept.column_names, *feature_names(refs)]
    return pa.Table.from_arrays([*kept.columns, *(pa.array(row) for row in values)], names=names)
