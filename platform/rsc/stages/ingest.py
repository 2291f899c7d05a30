"""ingest: raw bars from the configured source -> a validated version of the stored dataset, which the
run's ``bars/`` points at (:mod:`rsc.data.versions`).

Symbols stream through one at a time, on every core (:mod:`rsc.data.parallel`): read (a file per
symbol on the worker that handles it), validated, put on top of the stored bars and written as the
symbol's file, so memory holds a few symbols, not the dataset. The new version becomes visible only
when its manifest is written, after every symbol passed; bad input removes the files this ingest
wrote, so it leaves the dataset exactly as it was. New bars go on top of the dataset's latest version
(:mod:`rsc.data.append`): only the symbols that changed get new files, and stored bars are never
silently rewritten. With ``data.version`` the run uses that stored version as it is and reads no
source.

A clean file (:class:`rsc.data.raw.CleanBars`) arrives checked, as arrays, and is stored from them; any
other arrives as a frame and goes through every check (:func:`rsc.data.validate.check_bars`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rsc.config import Settings
from rsc.core.features import INDICATORS
from rsc.core.schema import CLOSE, HIGH, LOW, OHLCV_COLUMNS, OPEN, SYMBOL, TIMESTAMP
from rsc.data.append import AppendReport, merge_bars
from rsc.data.parallel import WORKERS, ordered_map
from rsc.data.progress import Track, untracked
from rsc.data.raw import CleanBars
from rsc.data.sources import Fetched, clip_dates, fetch_calls, make_source
from rsc.data.validate import accept, check_bars, quality_report, settle
from rsc.data.versions import Columns, DatasetVersions, Part, VersionWriter, find_version
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


def check_frequency(found: dict[str, str], declared: str) -> None:
    """The bars' own size (``found``: symbol -> :func:`bar_frequency`) must be the one the settings
    declare: it names the model lineage.

    Raises:
        ValueError: naming each symbol's bar size and the setting to change.
    """
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


def close_only(bars: Columns) -> bool:
    """Bars that carry a close and nothing else (a wide file, a close series): open = high = low = close."""
    close = np.asarray(bars[CLOSE])
    return bool(all(np.array_equal(np.asarray(bars[column]), close) for column in (OPEN, HIGH, LOW)))


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


@dataclass(frozen=True)
class _Ingested:
    """One symbol after ingest: its stored file (None: no bars in data.start..data.end) and findings."""

    symbol: str
    sha256: str  # of the raw input
    part: Part | None = None
    frequency: str | None = None  # None: fewer than two bars
    close_only: bool = False
    warnings: list[dict[str, str]] = field(default_factory=list)
    appended: AppendReport | None = None  # None: no stored version to go on top of


def _ingest_symbol(
    fetched: Fetched, cfg: Settings, writer: VersionWriter, stored: dict[str, Any] | None
) -> _Ingested:
    """Validate one symbol's bars, put them on top of its stored bars and store its file."""
    data, symbol = cfg.data, fetched.symbol
    if isinstance(fetched, CleanBars):  # checked as read (rsc.data.columns.clean_columns)
        clean = fetched.between(data.start, data.end)
        bars: Columns = {TIMESTAMP: clean.stamps, **clean.prices}
        first_row = clean.first_row  # the file's rows, named in findings
    else:
        bars = accept(*check_bars(fetched.frame, fetched.origin, symbol, data.validation, quality=False))
        bars = clip_dates(bars, data.start, data.end)
        first_row = 0
    stamps = np.asarray(bars[TIMESTAMP], "datetime64[ns]")
    if not len(stamps):
        return _Ingested(symbol, fetched.sha256)
    # Quality is judged on the bars the run uses, not on years outside data.start..data.end.
    prices = {name: np.asarray(bars[name], np.float64) for name in OHLCV_COLUMNS}
    rows = np.arange(first_row, first_row + len(stamps))
    settle(report := quality_report(stamps, prices, fetched.origin, symbol, data.validation, rows))
    warnings = [{"symbol": w.symbol, "check": w.check, "finding": str(w)} for w in report.warnings]
    frequency = bar_frequency(stamps) if len(stamps) > 1 else None
    closes = close_only(prices)
    appended = None if stored is None else AppendReport(appended={symbol: len(stamps)})
    if stored is not None and symbol in stored["partitions"]:
        # New bars on top of the stored ones; different values at one time stop here. Adjusted prices
        # are restated by every split and dividend: the new history replaces the stored.
        previous = writer.versions.read(stored, [symbol])
        fetched_bars = pd.DataFrame({TIMESTAMP: stamps, SYMBOL: symbol, **prices})
        merged, appended = merge_bars(previous, fetched_bars, data.restate or cfg.adjusted_prices)
        bars = clip_dates(merged, data.start, data.end)
    part = writer.store(symbol, bars)
    return _Ingested(symbol, fetched.sha256, part, frequency, closes, warnings, appended)


def _merged(reports: list[AppendReport]) -> AppendReport:
    merged = AppendReport()
    for report in reports:
        merged.appended.update(report.appended)
        merged.restated.update(report.restated)
        merged.kept.update(report.kept)
    return merged


def run(cfg: Settings, track: Track = untracked) -> IngestResult:
    storage = Storage.from_settings(cfg.storage)
    data = cfg.data
    versions = DatasetVersions.of(storage, cfg.storage.root, cfg.dataset_name)
    if data.version:
        return _pinned(cfg, storage, versions)
    symbols = None if list(data.symbols) == ["*"] else len(data.symbols)
    stored = versions.latest()
    writer = VersionWriter(versions)
    inputs: dict[str, str] = {}
    warnings, empty, found, closes_only, reports = [], [], {}, [], []

    def ingest_one(fetch: Callable[[], Fetched]) -> _Ingested:
        return _ingest_symbol(fetch(), cfg, writer, stored)

    try:
        calls = fetch_calls(make_source(data, storage), data.symbols)
        # Twice as many workers as cores: file reads and fsyncs wait on the disk while others compute.
        results = ordered_map(ingest_one, calls, workers=2 * WORKERS)
        with closing(results):
            for one in track(results, "ingest + validate", symbols):
                if one.part is None:
                    empty.append(one.symbol)
                    continue
                writer.add(one.part)
                inputs[f"raw/{one.symbol}"] = one.sha256
                warnings += one.warnings
                found.update({one.symbol: one.frequency} if one.frequency else {})
                closes_only += [one.symbol] if one.close_only else []
                reports += [one.appended] if one.appended else []
        if empty:
            raise ValueError(f"no bars between {data.start} and {data.end} for symbol(s) {sorted(empty)}")
        check_frequency(found, cfg.frequency)
        closes_only.sort()
        if closes_only and (conflicts := close_only_conflicts(cfg)):
            raise ValueError(
                f"{', '.join(closes_only)}: close-only bars (open = high = low = close) cannot be traded "
                "honestly under these settings: " + "; ".join(conflicts)
            )
        if stored is not None:
            inputs["previous_version"] = stored["sha256"]
            log.info("ingest: %s on top of version %s", _merged(reports).summary(), stored["sha256"][:12])
        manifest = writer.commit(inputs)
    except BaseException:
        writer.discard()
        raise
    layout = RunLayout(cfg.run_root)
    bars_uri = layout.bars
    storage.write_reference(bars_uri, manifest)
    storage.write_json(
        layout.quality, {"bars_sha256": manifest["sha256"], "warnings": warnings, "close_only": closes_only}
    )
    log.info(
        "ingest: %d symbols, %d bars -> %s (dataset %s version %s)",
        len(writer.partitions),
        manifest["rows"],
        bars_uri,
        cfg.dataset_name,
        manifest["sha256"][:12],
    )
    if warnings:
        log.warning("ingest: %d data-quality warning(s), listed in %s", len(warnings), layout.quality)
    return IngestResult(bars_uri, manifest["rows"], manifest["sha256"], len(writer.partitions))


def _pinned(cfg: Settings, storage: Storage, versions: DatasetVersions) -> IngestResult:
    """The run's bars are the stored version ``data.version`` names, as they are (looked for in the
    run's dataset first, then in every dataset: a pin of fewer symbols names another dataset)."""
    versions = find_version(storage, cfg.storage.root, cfg.data.version, cfg.dataset_name)
    manifest = versions.resolve(cfg.data.version)
    held = sorted(manifest["partitions"])
    wanted = held if list(cfg.data.symbols) == ["*"] else sorted(cfg.data.symbols)
    if missing := sorted(set(wanted) - set(held)):
        raise ValueError(f"data.version {cfg.data.version} holds {held}, not {missing}")
    frame = versions.read(manifest, wanted)
    if wanted != held:  # a subset of the version's symbols: a version of its own
        manifest = versions.write(frame, {"subset_of": manifest["sha256"]}, make_latest=False)
    frames = [rows for _, rows in frame.groupby(SYMBOL, sort=True)]
    closes_only = sorted(rows[SYMBOL].iloc[0] for rows in frames if close_only(rows))
    if closes_only and (conflicts := close_only_conflicts(cfg)):
        raise ValueError(
            f"{', '.join(closes_only)}: close-only bars (open = high = low = close) cannot be traded "
            "honestly under these settings: " + "; ".join(conflicts)
        )
    layout = RunLayout(cfg.run_root)
    storage.write_reference(layout.bars, manifest)
    storage.write_json(
        layout.quality,
        {"bars_sha256": manifest["sha256"], "warnings": [], "close_only": closes_only, "pinned": True},
    )
    log.info("ingest: pinned %s version %s (%d bars)", versions.home, manifest["sha256"][:12], len(frame))
    return IngestResult(layout.bars, int(manifest["rows"]), manifest["sha256"], len(frames))
