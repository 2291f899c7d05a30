"""split: train / validation / test by date, and the scaler fitted on the training rows only."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from rsc.config import Settings
from rsc.core.features import feature_names
from rsc.core.schema import PART
from rsc.data.features import indicator_refs
from rsc.data.splits import assign_parts, fit_scaler
from rsc.storage import Storage, join

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SplitResult:
    split_uri: str
    scaler_uri: str
    rows: dict[str, int]


def run(cfg: Settings, features_uri: str) -> SplitResult:
    storage = Storage.from_settings(cfg.storage)
    frame = assign_parts(storage.read_dataset(features_uri), cfg.split.train_end, cfg.split.validation_end)
    scaler = fit_scaler(frame, feature_names(indicator_refs(cfg.features)))
    split_uri = join(cfg.run_root, "split")
    scaler_uri = join(cfg.run_root, "scaler.json")
    storage.write_dataset(
        split_uri, frame, inputs={"features": storage.read_manifest(features_uri)["sha256"]}
    )
    storage.write_json(scaler_uri, scaler)
    rows = {str(k): int(v) for k, v in frame[PART].value_counts().items()}
    log.info("split: %s", rows)
    return SplitResult(split_uri, scaler_uri, rows)
