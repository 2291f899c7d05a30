"""ingest: raw bars from the configured source -> validated Parquet dataset (one file per symbol).

Every symbol is loaded and validated before anything is written, so bad input leaves the previous
dataset exactly as it was.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd

from rsc.config import Settings
from rsc.core.schema import SYMBOL
from rsc.data.progress import Track, untracked
from rsc.data.sources import clip_dates, make_source
from rsc.data.validate import accept, check_bars, check_quality_of
from rsc.storage import Storage
from rsc.storage.layout import RunLayout

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestResult:
    bars_uri: str
    rows: int
    sha256: str
    symbols: int


def run(cfg: Settings, track: Track = untracked) -> IngestResult:
    storage = Storage.from_settings(cfg.storage)
    data = cfg.data
    symbols = None if list(data.symbols) == ["*"] else len(data.symbols)
    frames, inputs, warnings, empty = [], {}, [], []
    for raw in track(make_source(data, storage).fetch(data.symbols), "ingest + validate", symbols):
        bars = accept(*check_bars(raw.frame, raw.origin, raw.symbol, data.validation, quality=False))
        bars[SYMBOL] = raw.symbol
        bars = clip_dates(bars, data.start, data.end)
        if bars.empty:
            empty.append(raw.symbol)
            continue
        # Quality is judged on the bars the run uses, not on years outside data.start..data.end.
        accept(bars, report := check_quality_of(bars, raw.origin, raw.symbol, data.validation))
        warnings += [{"symbol": w.symbol, "check": w.check, "finding": str(w)} for w in report.warnings]
        frames.append(bars)
        inputs[f"raw/{raw.symbol}"] = raw.sha256
    if empty:
        raise ValueError(f"no bars between {data.start} and {data.end} for symbol(s) {sorted(empty)}")
    frame = pd.concat(frames, ignore_index=True)
    layout = RunLayout(cfg.run_root)
    bars_uri = layout.bars
    manifest = storage.write_dataset(bars_uri, frame, inputs=inputs)
    storage.write_json(layout.quality, {"bars_sha256": manifest["sha256"], "warnings": warnings})
    log.info(
        "ingest: %d symbols, %d bars -> %s (sha256 %s)",
        len(frames),
        manifest["rows"],
        bars_uri,
        manifest["sha256"][:12],
    )
    if warnings:
        log.warning("ingest: %d data-quality warning(s), listed in %s", len(warnings), layout.quality)
    return IngestResult(bars_uri, manifest["rows"], manifest["sha256"], len(frames))
