"""Feature drift of the live bars against the training window, with the features training used."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rsc.config import Settings
from rsc.core.features import IndicatorRef, compute_features, feature_names, warmup_bars
from rsc.core.schema import PART, SYMBOL
from rsc.data.features import indicator_refs
from rsc.monitor.drift import Drift, feature_drift
from rsc.paper.decisions import INDICATOR_LOOKBACK
from rsc.paper.history import History
from rsc.storage import Storage, join
from rsc.storage.layout import RunLayout

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DriftWatch:
    reference: np.ndarray  # [N, F] raw features of the reference rows
    indicators: list[IndicatorRef]
    window: int  # live bars per comparison
    bins: int
    alert: float  # PSI above which the drift check warns

    @property
    def names(self) -> list[str]:
        return feature_names(self.indicators)

    def measure(self, history: History, symbols: Sequence[str]) -> list[Drift] | None:
        """PSI and KS of the latest ``window`` bars' features of ``symbols`` (pooled), or None when
        no symbol has enough history yet."""
        live = []
        warmup = warmup_bars(self.indicators) + INDICATOR_LOOKBACK
        for symbol in symbols:
            bars = history.window(symbol, warmup + self.window)
            if len(bars.timestamps) < self.window:
                continue
            features = compute_features(bars.bars(), self.indicators)[-self.window :]
            live.append(features[~np.isnan(features).any(axis=1)])
        rows = np.concatenate(live) if live else np.empty((0, len(self.names)))
        if len(rows) == 0:
            return None
        return feature_drift(self.reference, rows, self.names, self.bins)


def load_drift_watch(cfg: Settings, storage: Storage, symbols: Sequence[str]) -> DriftWatch | None:
    """The watch over the run's split (``monitor.drift_reference`` rows of ``symbols``), or None
    (logged) when drift is off or the run has no split with these features."""
    monitor = cfg.monitor
    if not monitor.drift:
        return None
    split_uri = RunLayout(cfg.run_root).split
    refs = indicator_refs(cfg.features)
    names = feature_names(refs)
    if not storage.exists(join(split_uri, "manifest.json")):
        log.warning("paper: no split at %s, so no drift reference; drift is not measured", split_uri)
        return None
    frame = storage.read_dataset(split_uri)
    missing = [name for name in names if name not in frame.columns]
    if missing:
        log.warning("paper: the split at %s lacks features %s; drift is not measured", split_uri, missing)
        return None
    rows = frame[(frame[PART] == monitor.drift_reference) & frame[SYMBOL].isin(list(symbols))]
    if rows.empty:
        log.warning(
            "paper: no %s rows of %s in %s; drift is not measured",
            monitor.drift_reference,
            symbols,
            split_uri,
        )
        return None
    reference = rows[names].to_numpy(np.float64)
    return DriftWatch(reference, refs, monitor.drift_window, monitor.drift_bins, monitor.drift_psi_alert)
