"""features: causal indicators per symbol -> feature dataset (warm-up rows dropped)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from rsc.config import Settings
from rsc.core.features import feature_names
from rsc.data.features import add_features, indicator_refs
from rsc.data.progress import Track, untracked
from rsc.storage import Storage
from rsc.storage.layout import RunLayout

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeaturesResult:
    features_uri: str
    columns: list[str]
    rows: int
    sha256: str


def run(cfg: Settings, bars_uri: str, track: Track = untracked) -> FeaturesResult:
    storage = Storage.from_settings(cfg.storage)
    columns = feature_names(indicator_refs(cfg.features))  # bad specs fail before reading
    bars_sha = storage.read_manifest(bars_uri)["sha256"]
    frame = add_features(storage.read_dataset(bars_uri), cfg.features, track)
    features_uri = RunLayout(cfg.run_root).features
    manifest = storage.write_dataset(features_uri, frame, inputs={"bars": bars_sha})
    log.info("features: %d rows x %d features %s", len(frame), len(columns), columns)
    return FeaturesResult(features_uri, columns, manifest["rows"], manifest["sha256"])
