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
from rsc.data.validate import validate_bars
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
    frames, inputs = [], {}
    for raw in track(make_source(data, storage).fetch(data.symbols), "ingest + validate", symbols):
        bars = validate_bars(raw.frame, raw.origin, raw.symbol, data.validation)
        bars[SYMBOL] = raw.symbol
        frames.append(bars)
        inputs[f"raw/{raw.symbol}"] = raw.sha256
    frame = clip_dates(pd.concat(frames, ignore_index=True), data.start, data.end)
    empty = sorted({b[SYMBOL].iloc[0] for b in frames} - set(frame[SYMBOL].unique()))
    if empty:
        raise ValueError(f"no bars between {data.start} and {data.end} for symbol(s) {empty}")
    bars_uri = RunLayout(cfg.run_root).bars
    manifest = storage.write_dataset(bars_uri, frame, inputs=inputs)
    log.info(
        "ingest: %d symbols, %d bars -> %s (sha256 %s)",
        len(frames),
        manifest["rows"],
        bars_uri,
        manifest["sha256"][:12],
    )
    return IngestResult(bars_uri, manifest["rows"], manifest["sha256"], len(frames))
