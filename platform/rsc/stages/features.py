"""features: causal indicators per symbol -> feature dataset (warm-up rows dropped).

The bars are read, computed and written in batches of whole symbols (about :data:`BATCH_BARS` bars
each), so memory stays bounded however long the history; the dataset is the same as from one batch.
Batches stay pyarrow tables from the files read to the files written: a pandas frame would convert a
text column of a million symbols twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from rsc.config import Settings
from rsc.core.features import feature_names
from rsc.core.schema import SYMBOL
from rsc.data.features import add_features_table, indicator_refs
from rsc.data.progress import Track, untracked
from rsc.storage import Storage
from rsc.storage.layout import RunLayout
from rsc.storage.store import PLAIN

log = logging.getLogger(__name__)

BATCH_BARS = 2_000_000


@dataclass(frozen=True)
class FeaturesResult:
    features_uri: str
    columns: list[str]
    rows: int
    sha256: str


def symbol_batches(manifest: dict[str, Any], bars: int = BATCH_BARS) -> list[list[str]] | None:
    """The dataset's symbols in order, in batches of about ``bars`` bars (None: not partitioned by
    symbol, read it whole)."""
    if manifest.get("partition_by") != SYMBOL:
        return None
    batches: list[list[str]] = [[]]
    held = 0
    for symbol, part in sorted(manifest["partitions"].items()):
        if batches[-1] and held + part["rows"] > bars:
            batches.append([])
            held = 0
        batches[-1].append(symbol)
        held += part["rows"]
    return batches


def run(cfg: Settings, bars_uri: str, track: Track = untracked) -> FeaturesResult:
    storage = Storage.from_settings(cfg.storage)
    columns = feature_names(indicator_refs(cfg.features))  # bad specs fail before reading
    manifest = storage.read_manifest(bars_uri)
    batches = symbol_batches(manifest)

    def tables() -> Iterator[pa.Table]:
        for symbols in batches or [None]:
            yield add_features_table(storage.read_dataset_table(bars_uri, symbols), cfg.features, track)

    features_uri = RunLayout(cfg.run_root).features
    written = storage.write_dataset_batches(
        features_uri, tables(), inputs={"bars": manifest["sha256"]}, fmt=PLAIN
    )
    log.info("features: %d rows x %d features %s", written["rows"], len(columns), columns)
    return FeaturesResult(features_uri, columns, written["rows"], written["sha256"])
