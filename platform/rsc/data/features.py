"""Feature datasets: the ``rsc.core.features`` kernels applied per symbol to a bars frame."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from rsc.config.settings import FeatureSettings
from rsc.core.features import Bars, IndicatorRef, compute_features, feature_names
from rsc.core.schema import OHLCV_COLUMNS, SYMBOL, TIMESTAMP
from rsc.data.progress import Track, untracked


def indicator_refs(settings: FeatureSettings) -> list[IndicatorRef]:
    """Checked refs (unknown names or parameters fail here, before any bar is read)."""
    return [IndicatorRef.of(spec.name, spec.window, spec.params) for spec in settings.indicators]


def add_features(bars: pd.DataFrame, settings: FeatureSettings, track: Track = untracked) -> pd.DataFrame:
    """Bars plus one column per indicator; warm-up rows (any NaN feature) are dropped.

    Each symbol's indicators see only that symbol's bars, in time order.
    """
    refs = indicator_refs(settings)
    names = feature_names(refs)
    ordered = bars.sort_values([SYMBOL, TIMESTAMP], kind="stable", ignore_index=True)
    columns = {c: ordered[c].to_numpy(dtype=np.float64) for c in OHLCV_COLUMNS}
    symbols = ordered[SYMBOL].to_numpy()
    starts = np.flatnonzero(np.r_[True, symbols[1:] != symbols[:-1]]) if len(symbols) else np.array([], int)
    bounds = [*starts.tolist(), len(symbols)]
    values = np.empty((len(ordered), len(names)))
    for start, stop in track(list(itertools.pairwise(bounds)), "features", len(starts)):
        one = Bars.from_columns({c: x[start:stop] for c, x in columns.items()})
        values[start:stop] = compute_features(one, refs)
    keep = ~np.isnan(values).any(axis=1)
    out = ordered.loc[keep].reset_index(drop=True)
    return pd.concat([out, pd.DataFrame(values[keep], columns=names)], axis=1)
