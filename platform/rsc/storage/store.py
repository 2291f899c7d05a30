"""The one place that turns URIs into bytes: ``file://`` and ``s3://`` through fsspec.

Datasets are written so that readers never see a partial one, on any filesystem: data files get
content-addressed names (one Parquet file per symbol, under ``symbol=<name>/``) and the manifest,
which lists them, is written last as a single object. A crash before the manifest lands leaves the
previous version intact; files no manifest lists are removed after the next successful write.

The manifest records the schema, rows, time range, each file's sha256 and the dataset's sha256 (over
the per-partition hashes), plus the hashes of the datasets it was derived from. It holds no wall-clock
time, so the same frame gives a byte-identical manifest on file:// and s3://, run after run.

A dataset partitioned by symbol can be written and read in batches of symbols
(:meth:`Storage.write_dataset_batches`, :meth:`Storage.read_dataset` with ``symbols``), so a stage
holds one batch at a time; the files and the manifest are the same as for the whole frame at once.
Datasets are written from, and read as, pandas frames or pyarrow tables (:meth:`Storage.read_dataset_table`):
a stage that works on Arrow spares the pandas round trips of its text columns, and a table is stored
as the same bytes as the frame it reads back as.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs
import pyarrow.parquet as pq

from rsc.config.settings import StorageSettings
from rsc.core.schema import SYMBOL, TIMESTAMP

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 2
READERS = os.cpu_count() or 1  # partition files read at once (pyarrow releases the GIL)
WRITERS = 2 * READERS  # files written at once: while some wait on fsync, the others keep every core encoding


def join(uri: str, *parts: str) -> str:
    """Join URI path segments with single slashes."""
    return "/".join([uri.rstrip("/"), *(p.strip("/") for p in parts)])


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ParquetFormat:
    """How a dataset's Parquet files are encoded: a codec, and the columns given statistics (None:
    every column)."""

    compression: str
    statistics: tuple[str, ...] | None = None


# Stored bars, kept for years: zstd gives the smallest files, and statistics on every column.
COMPACT = ParquetFormat("zstd")
# Derived per-run data (features), written once and read whole: float columns, nearly all distinct
# values, shrink by a few percent only under any codec, so they are stored plain (a third less CPU to
# write than snappy); statistics only on the key columns, the ones a reader could filter on.
PLAIN = ParquetFormat("none", (TIMESTAMP, SYMBOL))


def parquet_bytes(table: pa.Table, fmt: ParquetFormat = COMPACT) -> bytes:
    """``table`` as one Parquet file in ``fmt``. Only text columns (a symbol repeated on every row) are
    dictionary-encoded: prices and features are nearly all distinct values, for which a dictionary
    costs time and space."""
    text = [f.name for f in table.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    statistics = True if fmt.statistics is None else [c for c in fmt.statistics if c in table.column_names]
    buffer = io.BytesIO()
    pq.write_table(
        table, buffer, compression=fmt.compression, use_dictionary=text, write_statistics=statistics
    )
    return buffer.getvalue()


@dataclass(frozen=True)
class Storage:
    """Reads and writes under any supported URI; holds only connection settings.

    S3 settings left as None fall back to botocore's usual chain: ``AWS_ACCESS_KEY_ID``,
    ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL_S3``,
    profiles and instance or pod roles.
    """

    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None

    @classmethod
    def from_settings(cls, settings: StorageSettings) -> Storage:
        return cls(
            s3_endpoint_url=settings.s3_endpoint_url,
            s3_region=settings.s3_region,
            s3_access_key_id=settings.s3_access_key_id,
            s3_secret_access_key=settings.s3_secret_access_key,
        )

    def s3_options(self) -> dict[str, Any]:
        """Keyword arguments for ``s3fs.S3FileSystem`` (only what is configured)."""
        client: dict[str, Any] = {}
        if self.s3_endpoint_url:
            client["endpoint_url"] = self.s3_endpoint_url
        if self.s3_region:
            client["region_name"] = self.s3_region
        options: dict[str, Any] = {"client_kwargs": client} if client else {}
        if self.s3_access_key_id:
            options["key"] = self.s3_access_key_id
        if self.s3_secret_access_key:
            options["secret"] = self.s3_secret_access_key
        return options

    def filesystem(self, uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
        if uri.startswith("s3://"):
            return fsspec.filesystem("s3", **self.s3_options()), uri.removeprefix("s3://")
        if uri.startswith("file://") or "://" not in uri:
            return fsspec.filesystem("file"), uri.removeprefix("file://")
        raise ValueError(f"unsupported URI scheme in {uri!r}: use file:// or s3://")

    def arrow_filesystem(self, uri: str) -> tuple[pyarrow.fs.FileSystem | None, str]:
        """What Ray Tune and Train take as ``storage_filesystem`` and ``storage_path`` for ``uri``.

        ``s3://`` gets this storage's own S3 client (endpoint and keys included), wrapped for pyarrow, and
        the path without its scheme, as Ray expects with a custom filesystem; a local URI gets no
        filesystem and a plain path.
        """
        if uri.startswith("s3://"):
            fs, path = self.filesystem(uri)
            return pyarrow.fs.PyFileSystem(pyarrow.fs.FSSpecHandler(fs)), path
        fs, path = self.filesystem(uri)
        return None, path

    # -- bytes and JSON -------------------------------------------------------------------------
    def exists(self, uri: str) -> bool:
        fs, path = self.filesystem(uri)
        return fs.exists(path)

    def isdir(self, uri: str) -> bool:
        fs, path = self.filesystem(uri)
        return fs.isdir(path)

    def list_files(self, uri: str) -> list[str]:
        """URIs of the files directly in the folder ``uri``, sorted; none when there is no such folder.

        The listing is read afresh each time: s3fs caches listings, and another process (a paper
        trader's ledger, a pipeline step) may have written since.
        """
        fs, path = self.filesystem(uri)
        fs.invalidate_cache(path)
        if not fs.exists(path):
            return []
        entries = fs.ls(path, detail=True)
        files = [
            e["name"] for e in entries if e["type"] == "file" or (e.get("islink") and fs.isfile(e["name"]))
        ]
        names = sorted(name.rstrip("/").rsplit("/", 1)[-1] for name in files)
        return [join(uri, name) for name in names]

    def read_bytes(self, uri: str) -> bytes:
        fs, path = self.filesystem(uri)
        if not fs.exists(path):
            raise FileNotFoundError(f"no object at {uri}")
        return fs.cat_file(path)

    def write_bytes(self, uri: str, data: bytes) -> None:
        """Write one object atomically: a temporary name then a rename locally; one PUT on S3."""
        fs, path = self.filesystem(uri)
        if uri.startswith("s3://"):
            fs.pipe_file(path, data)
            return
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        tmp = f"{path}.tmp-{uuid.uuid4().hex}"
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)

    def read_json(self, uri: str) -> Any:
        return json.loads(self.read_bytes(uri))

    def write_json(self, uri: str, payload: Any) -> None:
        self.write_bytes(uri, json.dumps(payload, indent=2, sort_keys=True, default=str).encode())

    # -- datasets -------------------------------------------------------------------------------
    def write_dataset(
        self,
        uri: str,
        frame: pd.DataFrame | pa.Table,
        inputs: dict[str, str] | None = None,
        notes: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Write ``frame`` as a Parquet dataset (one file per symbol if it has a symbol column).

        Args:
            inputs: name -> sha256 of the datasets this one was derived from (lineage).
            notes: facts about how the rows were made (e.g. ``alignment``), kept in the manifest.

        Returns:
            The manifest, written last: the commit point of the dataset.
        """
        return self.write_dataset_batches(uri, [frame], inputs, notes)

    def write_dataset_batches(
        self,
        uri: str,
        batches: Iterable[pd.DataFrame | pa.Table],
        inputs: dict[str, str] | None = None,
        notes: dict[str, Any] | None = None,
        fmt: ParquetFormat = COMPACT,
    ) -> dict[str, Any]:
        """:meth:`write_dataset` of the frames of ``batches`` taken together, one batch in memory at a
        time: each symbol's rows in one batch, batches in symbol order (then the files and manifest are
        those of the whole frame). A batch is a frame or a pyarrow table (then it is not converted; its
        files are those of the frame it reads back as). ``fmt``: how the files are encoded."""
        partitions: dict[str, dict[str, Any]] = {}
        rows, schema, partition_by, spans = 0, None, None, []
        with ThreadPoolExecutor(WRITERS, thread_name_prefix="rsc-write") as pool:
            for batch in batches:
                table = _as_stored(batch)
                schema = schema or table.schema
                partition_by = SYMBOL if SYMBOL in table.column_names else None
                parts = _partitions(table)
                for key, entry in pool.map(lambda item: self._write_part(uri, *item, fmt), parts):
                    if key in partitions:
                        raise ValueError(f"{uri}: partition {key!r} is in two batches")
                    partitions[key] = entry
                rows += table.num_rows
                if (span := _time_range(table)) is not None:
                    spans.append(span)
        listing = "".join(f"{key}\t{p['sha256']}\n" for key, p in partitions.items())
        manifest = {
            "format": MANIFEST_FORMAT,
            "sha256": sha256_bytes(listing.encode()),
            "rows": rows,
            "schema": {field.name: str(field.type) for field in schema or []},
            "time_range": [str(min(s[0] for s in spans)), str(max(s[1] for s in spans))] if spans else None,
            "partition_by": partition_by,
            "partitions": partitions,
            "files": [p["file"] for p in partitions.values()],
            "inputs": dict(sorted((inputs or {}).items())),
            **(notes or {}),
        }
        self.write_json(join(uri, MANIFEST), manifest)
        self._remove_orphans(uri, keep={MANIFEST, *manifest["files"]})
        return manifest

    def _write_part(
        self, uri: str, key: str | None, part: pa.Table, fmt: ParquetFormat
    ) -> tuple[str, dict[str, Any]]:
        """One partition's Parquet file, named by its hash; (partition key, manifest entry)."""
        data = parquet_bytes(part, fmt)
        digest = sha256_bytes(data)
        name = f"part-{digest[:16]}.parquet"
        if key is not None:
            name = f"{SYMBOL}={quote(key, safe='')}/{name}"
        self.write_bytes(join(uri, name), data)
        return key or "", {"file": name, "sha256": digest, "rows": part.num_rows}

    def write_reference(self, uri: str, manifest: dict[str, Any]) -> None:
        """Make ``uri`` a dataset whose files live elsewhere: ``manifest`` names them relative to its
        ``base`` (a stored dataset version); whatever ``uri`` held before is removed."""
        if "base" not in manifest:
            raise ValueError("a dataset reference needs the 'base' its files are relative to")
        self.write_json(join(uri, MANIFEST), manifest)
        self._remove_orphans(uri, keep={MANIFEST})

    def read_manifest(self, uri: str) -> dict[str, Any]:
        manifest_uri = join(uri, MANIFEST)
        if not self.exists(manifest_uri):
            raise FileNotFoundError(f"no dataset at {uri} (missing {MANIFEST})")
        return self.read_json(manifest_uri)

    def read_dataset(self, uri: str, symbols: list[str] | None = None) -> pd.DataFrame:
        """Read the files the manifest lists (all, or those of ``symbols``), never other files."""
        return self.read_dataset_table(uri, symbols).to_pandas()

    def read_dataset_table(self, uri: str, symbols: list[str] | None = None) -> pa.Table:
        """:meth:`read_dataset` as one pyarrow table, for work done on Arrow (no pandas round trip)."""
        manifest = self.read_manifest(uri)
        files = manifest["files"]
        if symbols is not None:
            partitions = manifest.get("partitions", {})
            missing = [s for s in symbols if s not in partitions]
            if missing:
                raise KeyError(f"{uri}: no symbol(s) {missing} in the dataset; it has {sorted(partitions)}")
            files = [partitions[s]["file"] for s in symbols]
        base = manifest.get("base", uri)  # a reference to a stored version reads the version's files
        return self.read_parquet_table([join(base, name) for name in files])

    def read_parquet(self, uris: list[str]) -> pd.DataFrame:
        """The Parquet files ``uris`` as one frame, in order (read on every core)."""
        return self.read_parquet_table(uris).to_pandas()

    def read_parquet_table(self, uris: list[str]) -> pa.Table:
        """:meth:`read_parquet` as one pyarrow table. Each file is read by ``ParquetFile``: ``read_table``'s
        dataset machinery costs more than the reading itself for a file of one symbol's bars."""
        with ThreadPoolExecutor(READERS, thread_name_prefix="rsc-read") as pool:
            tables = list(
                pool.map(
                    lambda uri: pq.ParquetFile(pa.BufferReader(self.read_bytes(uri))).read(use_threads=False),
                    uris,
                )
            )
        return pa.concat_tables(tables)

    def _remove_orphans(self, uri: str, keep: set[str]) -> None:
        """Delete what the manifest does not list (older versions, a crashed write's leftovers)."""
        fs, path = self.filesystem(uri)
        root = path.rstrip("/")
        for entry in fs.find(root):
            if entry.removeprefix(root).lstrip("/") not in keep:
                fs.rm(entry)
        if not uri.startswith("s3://"):  # S3 has no folders; local ones emptied above go too
            for folder in sorted(Path(root).rglob("*"), reverse=True):
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()

    # -- folders (checkpoints) ------------------------------------------------------------------
    def upload_dir(self, local_dir: str | Path, uri: str) -> None:
        """Copy a local folder to ``uri`` (replacing what was there)."""
        fs, path = self.filesystem(uri)
        if fs.exists(path):
            fs.rm(path, recursive=True)
        fs.makedirs(path, exist_ok=True)
        fs.put(f"{Path(local_dir)}/", path, recursive=True)

    def download_dir(self, uri: str, local_dir: str | Path) -> Path:
        fs, path = self.filesystem(uri)
        if not fs.exists(path):
            raise FileNotFoundError(f"no folder at {uri}")
        Path(local_dir).mkdir(parents=True, exist_ok=True)
        fs.get(f"{path.rstrip('/')}/", str(local_dir), recursive=True)
        return Path(local_dir)

    def local_path(self, uri: str) -> Path | None:
        """The local path of a file:// URI, else None."""
        return Path(uri.removeprefix("file://")) if not uri.startswith("s3://") else None


def _as_stored(batch: pd.DataFrame | pa.Table) -> pa.Table:
    """``batch`` as a table with the pandas metadata of its frame: a table is stored as the same bytes as
    the frame it reads back as (whatever metadata it was read with)."""
    if isinstance(batch, pd.DataFrame):
        return pa.Table.from_pandas(batch, preserve_index=False)
    schema = batch.schema.remove_metadata()
    frame = schema.empty_table().to_pandas()
    return batch.replace_schema_metadata(pa.Schema.from_pandas(frame, preserve_index=False).metadata)


def symbol_codes(column: pa.ChunkedArray) -> tuple[np.ndarray, bool]:
    """Per row, the number of its symbol in order of appearance, and whether that order is the
    symbols' sorted order (then rows whose numbers never decrease are grouped in symbol order)."""
    encoded = column.combine_chunks().dictionary_encode(null_encoding="encode")
    keys = encoded.dictionary
    ascending = pc.all(pc.less(keys[:-1], keys[1:]), skip_nulls=False).as_py() is True
    return encoded.indices.to_numpy(), ascending


def group_starts(codes: np.ndarray) -> np.ndarray:
    """The first row of each run of equal codes (each symbol's first row, of rows grouped by symbol)."""
    return np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if len(codes) else np.array([], int)


def _partitions(table: pa.Table) -> list[tuple[str | None, pa.Table]]:
    """One zero-copy slice per symbol, in symbol order (the whole table without a symbol column); rows
    not grouped by symbol are first sorted by it (stable: each symbol's rows keep their order)."""
    if SYMBOL not in table.column_names or table.num_rows == 0:
        return [(None, table)]
    index, ascending = symbol_codes(table.column(SYMBOL))
    if not (ascending and (index[1:] >= index[:-1]).all()):
        table = table.sort_by(SYMBOL)
        index, _ = symbol_codes(table.column(SYMBOL))
    starts = group_starts(index)
    keys = table.column(SYMBOL).take(starts).to_pylist()
    spans = itertools.pairwise([*starts.tolist(), len(index)])
    return [(str(key), table.slice(a, b - a)) for key, (a, b) in zip(keys, spans, strict=True)]


def _time_range(table: pa.Table) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The first and last timestamp (None without timestamps)."""
    if TIMESTAMP not in table.column_names or table.num_rows == 0:
        return None
    span = pc.min_max(table.column(TIMESTAMP))
    return pd.Timestamp(span["min"].as_py()), pd.Timestamp(span["max"].as_py())
