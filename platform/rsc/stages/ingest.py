"""ingest: raw bars from the configured source -> validated Parquet dataset under the run root."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd

from rsc.config import Settings
from rsc.data.sources import clip_dates, load_bars
from rsc.data.validate import validate_bars
from rsc.storage import Storage, join

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestResult:
    bars_uri: str
    rows: int
    sha256: str


def run(cfg: Settings) -> IngestResult:
    storage = Storage.from_settings(cfg.storage)
    source = cfg.data.path or f"bundled:{cfg.data.source}"
    frames = []
    for symbol, raw in load_bars(cfg.data, storage).items():
        bars = clip_dates(validate_bars(raw, source, symbol), cfg.data.start, cfg.data.end)
        if bars.empty:
            raise ValueError(f"{source} [{symbol}]: no bars between {cfg.data.start} and {cfg.data.end}")
        frames.append(bars)
        log.info(
            "ingest: %s %d bars %s..%s",
            symbol,
            len(bars),
            bars.timestamp.iloc[0].date(),
            bars.timestamp.iloc[-1].date(),
        )
    bars_uri = join(cfg.run_root, "bars")
    manifest = storage.write_dataset(bars_uri, pd.concat(frames, ignore_index=True))
    return IngestResult(bars_uri, manifest["rows"], manifest["sha256"])
