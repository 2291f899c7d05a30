"""Feature datasets: the ``rsc.core.features`` kernels applied per symbol to a bars frame."""

from __future__ import annotations

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
    ordered = bars.sort_values([SYMBOL, TIMESTAMP], kind="stable")
    groups = ordered.groupby(SYMBOL, sort=True)
    parts = []
    for _, group in track(groups, "features", groups.ngroups):
        values = compute_features(Bars.from_columns({c: group[c].to_numpy() for c in OHLCV_COLUMNS}), refs)
        part = group.reset_index(drop=True)
        part = pd.concat([part, pd.DataFrame(values, columns=names)], axis=1)
        parts.append(part.dropna(subset=names))
    return pd.concat(parts, ignore_index=True)
