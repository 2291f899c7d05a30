"""Feature datasets: the ``rsc.core.features`` kernels applied per symbol to a bars frame."""

from __future__ import annotations

import pandas as pd

from rsc.config.settings import FeatureSettings
from rsc.core.features import Bars, IndicatorRef, compute_features, feature_names
from rsc.core.schema import OHLCV_COLUMNS, SYMBOL, TIMESTAMP


def indicator_refs(settings: FeatureSettings) -> list[IndicatorRef]:
    """Checked refs (unknown names or parameters fail here, before any bar is read)."""
    return [IndicatorRef.of(spec.name, spec.window, spec.params) for spec in settings.indicators]


def add_features(bars: pd.DataFrame, settings: FeatureSettings) -> pd.DataFrame:
    """Bars plus one column per indicator; warm-up rows (any NaN feature) are dropped."""
    refs = indicator_refs(settings)
    names = feature_names(refs)
    parts = []
    for _, group in bars.sort_values([SYMBOL, TIMESTAMP]).groupby(SYMBOL, sort=True):
        values = compute_features(Bars.from_columns({c: group[c].to_numpy() for c in OHLCV_COLUMNS}), refs)
        part = group.reset_index(drop=True).copy()
        part[names] = values
        parts.append(part.dropna(subset=names))
    return pd.concat(parts, ignore_index=True)
