"""split: the single train / validation / test split by date with its scaler (fitted on train only),
and walk-forward folds across the history before the test part (``folds.json``: date ranges after
purge and embargo, one scaler per fold).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from rsc.config import Settings
from rsc.core.artifacts import FoldRecord, Folds, Scaler
from rsc.core.features import feature_names
from rsc.core.metrics import infer_periods_per_year
from rsc.core.schema import PART
from rsc.data.align import align_symbols
from rsc.data.features import indicator_refs
from rsc.data.splits import assign_parts, fit_scaler, fold_summary, time_axis, walk_forward
from rsc.storage import Storage
from rsc.storage.layout import RunLayout, write_artifact

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SplitResult:
    split_uri: str
    scaler_uri: str
    rows: dict[str, int]
    folds_uri: str
    folds: int


def run(cfg: Settings, features_uri: str) -> SplitResult:
    storage = Storage.from_settings(cfg.storage)
    features_sha = storage.read_manifest(features_uri)["sha256"]
    features = storage.read_dataset(features_uri)
    columns = feature_names(indicator_refs(cfg.features))
    notes = {}
    if cfg.env.kind == "portfolio":  # every symbol on one calendar before parts and folds are laid
        features, alignment = align_symbols(features, cfg.data.align)
        notes["alignment"] = alignment.model_dump(mode="json")
        log.info("split: aligned %s", alignment.summary())

    frame = assign_parts(features, cfg.split.train_end, cfg.split.validation_end, cfg.split.holdout_bars)
    inputs = {"features": features_sha}
    scaler = Scaler(**fit_scaler(frame, columns), inputs=inputs)
    axis = time_axis(features)
    walk = cfg.split.walk_forward
    # The folds cover the history before the test part, so selection never sees the test bars.
    history_end = int(np.searchsorted(axis, np.datetime64(cfg.split.validation_end) + np.timedelta64(1, "D")))
    laid = walk_forward(len(axis), walk, history_end, infer_periods_per_year(axis).periods_per_year)
    folds = Folds(
        settings=walk.model_dump(mode="json"),
        inputs=inputs,
        folds=tuple(FoldRecord.model_validate(fold_summary(fold, axis, features, columns)) for fold in laid),
    )

    layout = RunLayout(cfg.run_root)
    storage.write_dataset(layout.split, frame, inputs=inputs, notes=notes)
    write_artifact(storage, layout.scaler, scaler)
    write_artifact(storage, layout.folds, folds)
    rows = {str(k): int(v) for k, v in frame[PART].value_counts().items()}
    log.info("split: %s; %d walk-forward folds -> %s", rows, len(folds.folds), layout.folds)
    for number, fold in enumerate(folds.folds, start=1):
        log.info(
            "fold %d: train %s..%s, validation %s..%s (%d / %d rows)",
            number, *fold.train, *fold.validation, fold.rows["train"], fold.rows["validation"],
        )  # fmt: skip
    return SplitResult(layout.split, layout.scaler, rows, layout.folds, len(folds.folds))
