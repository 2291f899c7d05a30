"""ingest: raw bars from the configured source -> validated Parquet dataset (one file per symbol).

Every symbol is loaded and validated before anything is written, so bad input leaves the previous
dataset exactly as it was.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rsc.config import Settings
from rsc.core.features import INDICATORS
from rsc.core.schema import CLOSE, HIGH, LOW, OPEN, SYMBOL, TIMESTAMP
from rsc.data.progress import Track, untracked
from rsc.data.sources import clip_dates, make_source
from rsc.data.validate import accept, check_bars, check_quality_of
from rsc.registry.lineage import bar_frequency
from rsc.storage import Storage
from rsc.storage.layout import RunLayout

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestResult:
    bars_uri: str
    rows: int
    sha256: str
    symbols: int


def check_frequency(frames: list[pd.DataFrame], declared: str) -> None:
    """The bars' own size must be the one the settings declare: it names the model lineage.

    Raises:
        ValueError: naming each symbol's bar size and the setting to change.
    """
    found = {
        bars[SYMBOL].iloc[0]: bar_frequency(bars[TIMESTAMP].to_numpy()) for bars in frames if len(bars) > 1
    }
    sizes = sorted(set(found.values()))
    if len(sizes) > 1:
        listed = ", ".join(f"{symbol} {size}" for symbol, size in sorted(found.items()))
        raise ValueError(f"the symbols have different bar sizes ({listed}); a run trades one bar size")
    if sizes and sizes[0] != declared:
        raise ValueError(
            f"the bars are {sizes[0]} bars but the settings declare {declared}: "
            f"set data.frequency={sizes[0]} "
            "(the bar size names the model lineage, rsc-<strategy>-<symbols>-<bar size>)"
        )


def close_only(bars: pd.DataFrame) -> bool:
    """Bars that carry a close and nothing else (a wide file, a close series): open = high = low = close."""
    close = bars[CLOSE].to_numpy()
    return bool(all(np.array_equal(bars[column].to_numpy(), close) for column in (OPEN, HIGH, LOW)))


def close_only_conflicts(cfg: Settings) -> list[str]:
    """The settings that need more than a close: each named with what to set instead."""
    env, conflicts = cfg.env, []
    if env.fill != "next_close":
        conflicts.append(
            f"env.fill={env.fill} fills at an open these bars do not have: set env.fill=next_close"
        )
    if env.spread_factor:
        conflicts.append(
            "env.spread_factor > 0 estimates the spread from a range these bars do not have: set 0"
        )
    for name in ("stop_loss", "take_profit"):
        if getattr(env, name) is not None:
            conflicts.append(f"env.{name} is checked against the bar's range: unset it")
    needing = sorted(
        {
            spec.name
            for spec in cfg.features.indicators
            if spec.name in INDICATORS and INDICATORS[spec.name].needs - {CLOSE}
        }
    )
    if needing:
        conflicts.append(f"features.indicators {needing} read high, low or volume: use close-based ones")
    return conflicts


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
    check_frequency(frames, cfg.frequency)
    closes_only = sorted(bars[SYMBOL].iloc[0] for bars in frames if close_only(bars))
    if closes_only and (conflicts := close_only_conflicts(cfg)):
        raise ValueError(
            f"{', '.join(closes_only)}: close-only bars (open = high = low = close) cannot be traded "
            "honestly under these settings: " + "; ".join(conflicts)
        )
    layout = RunLayout(cfg.run_root)
    bars_uri = layout.bars
    manifest = storage.write_dataset(bars_uri, frame, inputs=inputs)
    storage.write_json(
        layout.quality, {"bars_sha256": manifest["sha256"], "warnings": warnings, "close_only": closes_only}
    )
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
