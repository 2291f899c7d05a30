"""Dataset versions with a home of their own, outside every run root: ``<storage.root>/datasets/<name>/``.

A run root is made per execution, so the bars a model was trained on cannot live inside one: ingest
writes each version of a dataset here and the run's ``bars/manifest.json`` points at it.

- ``parts/symbol=<s>/part-<digest>.parquet``: one file per symbol, named by the hash of its bytes and
  shared by every version that holds the same bars, so a new version rewrites only the symbols that
  changed;
- ``versions/<content hash>/manifest.json``: a version's manifest (its files, rows, schema, range);
- ``LATEST``: the content hash of the newest version.

A version is named by the hash of its **canonical table** (:func:`content_hash`: rows sorted by symbol
and time, columns by name, values in fixed binary types), so the same bars get the same name whatever
the Parquet layout or library version, on ``file://`` and ``s3://``. Its manifest also keeps the hash
the run manifests used before (over the Parquet files), so a hash recorded then still resolves.

A version is written symbol by symbol (:class:`VersionWriter`): each symbol's file as soon as its bars
are ready, the hash from each column's bytes spooled per symbol, the manifest once every symbol is in;
so an ingest holds one symbol's bars at a time, not the dataset.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import numpy as np
import pandas as pd
import pyarrow as pa

from rsc.core.schema import SYMBOL, TIMESTAMP
from rsc.storage import Storage, join
from rsc.storage.store import MANIFEST, MANIFEST_FORMAT, parquet_bytes, sha256_bytes

DATASETS = "datasets"
PARTS, VERSIONS, LATEST = "parts", "versions", "LATEST"


class VersionError(LookupError):
    """A dataset version that does not exist (the message lists the ones that do)."""


def content_hash(frame: pd.DataFrame) -> str:
    """SHA-256 of the canonical table: rows by (symbol, timestamp), columns by name, each column as
    fixed-width binary (float64, int64 nanoseconds for times, UTF-8 for text)."""
    keys = [c for c in (SYMBOL, TIMESTAMP) if c in frame.columns]
    rows = frame.sort_values(keys, kind="stable") if keys else frame
    digest = hashlib.sha256()
    for name in sorted(rows.columns):
        kind, data = _canonical(rows[name])
        digest.update(f"{name}\0{kind}\0{len(rows)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def _canonical(column: pd.Series | np.ndarray) -> tuple[str, bytes]:
    """A column's kind and bytes in the canonical table (text values joined by NUL)."""
    kind = column.dtype.kind if isinstance(column.dtype, np.dtype) else None
    if kind in ("f", "i", "u"):  # numpy's own numbers, the usual case, without the checks below
        return "number", np.asarray(column, np.float64).tobytes()
    if kind == "M":
        return "time[None]", np.asarray(column, "datetime64[ns]").view(np.int64).tobytes()
    column = pd.Series(column) if isinstance(column, np.ndarray) else column
    if pd.api.types.is_datetime64_any_dtype(column):
        zone = column.dt.tz
        stamps = column.dt.tz_convert("UTC").dt.tz_localize(None) if zone is not None else column
        kind = f"time[{zone}]"  # naive and zoned stamps of the same instants are different tables
        return kind, stamps.to_numpy("datetime64[ns]").view(np.int64).tobytes()
    if pd.api.types.is_bool_dtype(column):
        return "bool", column.to_numpy(np.uint8).tobytes()
    if pd.api.types.is_numeric_dtype(column):
        return "number", column.to_numpy(np.float64).tobytes()
    return "text", "\0".join(column.astype(str).tolist()).encode()


Columns = pd.DataFrame | Mapping[str, np.ndarray]  # one symbol's bars: a frame, or name -> array


def canonical_columns(symbol: str, rows: Columns) -> dict[str, tuple[str, bytes]]:
    """One symbol's rows as columns of the canonical table (:func:`_canonical`); rows without a
    ``symbol`` column get one holding ``symbol``."""
    columns = {str(name): _canonical(rows[name]) for name in rows}
    if SYMBOL not in columns:
        columns[SYMBOL] = ("text", "\0".join([symbol] * _length(rows)).encode())
    return columns


def _length(rows: Columns) -> int:
    return len(rows[TIMESTAMP]) if TIMESTAMP in rows else len(rows[next(iter(rows))])


@dataclass
class _Spool:
    """One column of the canonical table, spooled per symbol (to disk past ``SPOOL_BYTES``)."""

    kind: str
    file: IO[bytes] = field(  # closed by CanonicalHash.close
        default_factory=lambda: tempfile.SpooledTemporaryFile(SPOOL_BYTES)  # noqa: SIM115
    )
    spans: dict[str, tuple[int, int]] = field(default_factory=dict)  # symbol -> (offset, length)


SPOOL_BYTES = 64 << 20


class CanonicalHash:
    """:func:`content_hash` of a table that arrives one symbol at a time, in any symbol order, each
    symbol's rows sorted by time: the same digest, without the table in memory."""

    def __init__(self) -> None:
        self.columns: dict[str, _Spool] = {}
        self.rows = 0

    def add(self, symbol: str, columns: dict[str, tuple[str, bytes]], rows: int) -> None:
        """One symbol's columns, as :func:`canonical_columns` gives them."""
        if not rows:
            return
        for name, (kind, data) in columns.items():
            spool = self.columns.setdefault(name, _Spool(kind))
            if spool.kind != kind:
                raise ValueError(f"column {name!r} is {kind} for {symbol} but {spool.kind} before")
            spool.file.seek(0, io.SEEK_END)
            spool.spans[symbol] = (spool.file.tell(), len(data))
            spool.file.write(data)
        self.rows += rows

    def hexdigest(self) -> str:
        digest = hashlib.sha256()
        for name in sorted(self.columns):
            spool = self.columns[name]
            digest.update(f"{name}\0{spool.kind}\0{self.rows}\0".encode())
            for i, symbol in enumerate(sorted(spool.spans)):
                offset, length = spool.spans[symbol]
                spool.file.seek(offset)
                if i and spool.kind == "text":
                    digest.update(b"\0")
                digest.update(spool.file.read(length))
        return digest.hexdigest()

    def close(self) -> None:
        for spool in self.columns.values():
            spool.file.close()


def dataset_home(root: str, name: str) -> str:
    return join(root, DATASETS, name)


def dataset_names(storage: Storage, root: str) -> list[str]:
    """The named datasets under ``<root>/datasets/``."""
    fs, path = storage.filesystem(join(root, DATASETS))
    fs.invalidate_cache(path)
    if not fs.exists(path):
        return []
    return sorted(entry.rstrip("/").rsplit("/", 1)[-1] for entry in fs.ls(path, detail=False))


def find_version(storage: Storage, root: str, wanted: str, first: str | None = None) -> DatasetVersions:
    """The dataset that holds version ``wanted`` (``first`` is looked in first)."""
    names = dataset_names(storage, root)
    ordered = ([first] if first in names else []) + [n for n in names if n != first]
    for name in ordered:
        versions = DatasetVersions.of(storage, root, name)
        try:
            versions.resolve(wanted)
            return versions
        except VersionError:
            continue
    raise VersionError(
        f"data.version {wanted!r} is not a version of any dataset under {join(root, DATASETS)} "
        f"(datasets: {', '.join(names) or 'none'}; `rsc data versions` lists them)"
    )


@dataclass(frozen=True)
class DatasetVersions:
    """The versions of one named dataset under ``<root>/datasets/<name>/``."""

    storage: Storage
    home: str

    @classmethod
    def of(cls, storage: Storage, root: str, name: str) -> DatasetVersions:
        return cls(storage, dataset_home(root, name))

    @property
    def parts(self) -> str:
        return join(self.home, PARTS)

    def _manifest_uri(self, version: str) -> str:
        return join(self.home, VERSIONS, version, MANIFEST)

    def write(
        self, frame: pd.DataFrame, inputs: dict[str, str] | None = None, make_latest: bool = True
    ) -> dict[str, Any]:
        """Store ``frame`` as a version (files already stored are not written again) and make it the
        latest; returns its manifest (see :class:`VersionWriter`)."""
        writer = VersionWriter(self)
        ordered = frame.sort_values([SYMBOL, TIMESTAMP], kind="stable", ignore_index=True)
        for symbol, rows in ordered.groupby(SYMBOL, sort=True):
            writer.add(writer.store(str(symbol), rows.reset_index(drop=True)))
        return writer.commit(inputs, make_latest)

    def commit(
        self, version: str, partitions: dict[str, Part], inputs: dict[str, str] | None, make_latest: bool
    ) -> dict[str, Any]:
        """Write the manifest of ``version`` (its part files are stored), then ``LATEST``; the same
        bars stored again are the same version, unchanged."""
        if self.storage.exists(self._manifest_uri(version)):  # a version never changes once written
            if make_latest:
                self.storage.write_bytes(join(self.home, LATEST), version.encode())
            return self.manifest(version)
        parts = [partitions[symbol] for symbol in sorted(partitions)]
        listing = "".join(f"{p.symbol}\t{p.sha256}\n" for p in parts)
        ranges = [p.time_range for p in parts if p.time_range]
        span = [str(min(r[0] for r in ranges)), str(max(r[1] for r in ranges))] if ranges else None
        manifest = {
            "format": MANIFEST_FORMAT,
            "sha256": version,
            "listing_sha256": sha256_bytes(listing.encode()),
            "rows": sum(p.rows for p in parts),
            "schema": parts[0].schema if parts else {},
            "time_range": span,
            "partition_by": SYMBOL,
            "partitions": {p.symbol: {"file": p.file, "sha256": p.sha256, "rows": p.rows} for p in parts},
            "files": [p.file for p in parts],
            "inputs": dict(sorted((inputs or {}).items())),
            "dataset": self.home.rsplit("/", 1)[-1],
            "base": self.parts,
        }
        self.storage.write_json(self._manifest_uri(version), manifest)
        if make_latest:  # a pinned subset is a version of its own, never the base of the next append
            self.storage.write_bytes(join(self.home, LATEST), version.encode())
        return manifest

    def latest(self) -> dict[str, Any] | None:
        """The newest version's manifest (None for a dataset with no version yet)."""
        uri = join(self.home, LATEST)
        if not self.storage.exists(uri):
            return None
        return self.manifest(self.storage.read_bytes(uri).decode().strip())

    def manifest(self, version: str) -> dict[str, Any]:
        return self.storage.read_json(self._manifest_uri(version))

    def names(self) -> list[str]:
        """Content hashes of every stored version."""
        fs, path = self.storage.filesystem(join(self.home, VERSIONS))
        fs.invalidate_cache(path)
        if not fs.exists(path):
            return []
        return sorted(entry.rstrip("/").rsplit("/", 1)[-1] for entry in fs.ls(path, detail=False))

    def resolve(self, wanted: str) -> dict[str, Any]:
        """The version a hash names: its content hash, the hash over its files recorded before, or a
        unique prefix of either."""
        matches = []
        for name in self.names():
            manifest = self.manifest(name)
            hashes = (name, manifest.get("listing_sha256", ""))
            if any(h == wanted or (len(wanted) >= 8 and h.startswith(wanted)) for h in hashes):
                matches.append(manifest)
        if len(matches) != 1:
            known = ", ".join(name[:12] for name in self.names()) or "none"
            why = "matches several versions" if matches else "is not a version of this dataset"
            raise VersionError(f"{wanted!r} {why} ({self.home}; versions: {known})")
        return matches[0]

    def read(self, manifest: dict[str, Any], symbols: list[str] | None = None) -> pd.DataFrame:
        files = manifest["files"] if symbols is None else [manifest["partitions"][s]["file"] for s in symbols]
        return self.storage.read_parquet([join(self.parts, name) for name in files])

    def size_bytes(self, manifest: dict[str, Any]) -> int:
        fs, _ = self.storage.filesystem(self.parts)
        total = 0
        for name in manifest["files"]:
            _, path = self.storage.filesystem(join(self.parts, name))
            total += int(fs.info(path)["size"])
        return total

    def written_at(self, version: str) -> float:
        """When the version's manifest was written (seconds since the epoch, from the filesystem)."""
        fs, path = self.storage.filesystem(self._manifest_uri(version))
        info = fs.info(path)
        stamp = info.get("mtime") or info.get("LastModified") or info.get("created")
        return float(stamp.timestamp() if hasattr(stamp, "timestamp") else stamp)

    def remove(self, version: str) -> None:
        """Delete a version's manifest (its files go when no kept version lists them: :meth:`sweep`)."""
        fs, path = self.storage.filesystem(join(self.home, VERSIONS, version))
        fs.rm(path, recursive=True)

    def sweep(self, min_age_s: float = 0.0, now: float | None = None) -> int:
        """Delete part files no remaining version lists and older than ``min_age_s`` (an ingest writes
        its files before the manifest that lists them: young files may be on their way); returns how many."""
        kept = {f for name in self.names() for f in self.manifest(name)["files"]}
        fs, root = self.storage.filesystem(self.parts)
        root = root.rstrip("/")
        if not fs.exists(root):
            return 0
        removed, now = 0, time.time() if now is None else now
        for entry in fs.find(root):
            if entry.removeprefix(root).lstrip("/") in kept:
                continue
            info = fs.info(entry)
            stamp = info.get("mtime") or info.get("LastModified") or info.get("created") or 0.0
            written = float(stamp.timestamp() if hasattr(stamp, "timestamp") else stamp)
            if now - written >= min_age_s:
                fs.rm(entry)
                removed += 1
        return removed


@dataclass(frozen=True)
class Part:
    """One symbol's stored file in a version, and what the version's manifest says of it."""

    symbol: str
    file: str  # relative to the dataset's parts/
    sha256: str
    rows: int
    schema: dict[str, str]
    time_range: tuple[pd.Timestamp, pd.Timestamp] | None
    canonical: dict[str, tuple[str, bytes]]  # the rows in the canonical table, until the writer hashed them


def bars_table(symbol: str, bars: Columns) -> pa.Table:
    """One symbol's bars as stored: ``timestamp`` (ns), ``symbol``, then the other columns as they are.

    Built column by column from the arrays (no pandas metadata: the columns' own types say it all).
    """
    names = [str(name) for name in bars]
    if SYMBOL in names:
        if not (bars[SYMBOL] == symbol).all():
            raise ValueError(f"rows of other symbols among the bars of {symbol!r}")
        names.remove(SYMBOL)
    names.insert(1 if names and names[0] == TIMESTAMP else 0, SYMBOL)
    arrays = []
    for name in names:
        if name == SYMBOL:
            arrays.append(pa.repeat(pa.scalar(symbol, pa.large_string()), _length(bars)))
        elif name == TIMESTAMP:
            arrays.append(pa.array(np.asarray(bars[TIMESTAMP], "datetime64[ns]")))
        else:
            column = bars[name]
            numbers = isinstance(column.dtype, np.dtype) and column.dtype.kind in "fiub"
            arrays.append(pa.array(np.asarray(column) if numbers else column))
    return pa.Table.from_arrays(arrays, names=names)


class VersionWriter:
    """A version written symbol by symbol.

    :meth:`store` writes one symbol's file (thread-safe: symbols can be stored in parallel; files
    are named by the hash of their bytes, so a file an earlier version holds is not written again);
    :meth:`add` takes it into the version; :meth:`commit` writes the manifest. Until then no version
    lists the new files, and :meth:`discard` removes them, so a failed ingest leaves the dataset as
    it was.
    """

    def __init__(self, versions: DatasetVersions):
        self.versions = versions
        self.partitions: dict[str, Part] = {}
        self.hash = CanonicalHash()
        self._written: list[str] = []
        self._folders: list[Path] = []  # local folders made for the files written, to remove with them
        self._lock = threading.Lock()

    def store(self, symbol: str, bars: Columns) -> Part:
        """Write one symbol's bars (a frame or name -> array, sorted by time; a ``symbol`` column is
        optional) as its part file."""
        table = bars_table(symbol, bars)
        data = parquet_bytes(table)
        digest = sha256_bytes(data)
        name = f"{SYMBOL}={quote(symbol, safe='')}/part-{digest[:16]}.parquet"
        uri = join(self.versions.parts, name)
        if not self.versions.storage.exists(uri):
            folders = self._missing_folders(uri)
            self.versions.storage.write_bytes(uri, data)
            with self._lock:
                self._written.append(uri)
                self._folders.extend(folders)
        stamps = np.asarray(bars[TIMESTAMP], "datetime64[ns]")
        span = (pd.Timestamp(stamps.min()), pd.Timestamp(stamps.max())) if len(stamps) else None
        schema = {field.name: str(field.type) for field in table.schema}
        canonical = canonical_columns(symbol, bars)
        return Part(symbol, name, digest, table.num_rows, schema, span, canonical)

    def add(self, part: Part) -> None:
        if part.symbol in self.partitions:
            raise ValueError(f"symbol {part.symbol!r} is in the version twice")
        self.hash.add(part.symbol, part.canonical, part.rows)
        self.partitions[part.symbol] = replace(part, canonical={})

    def commit(self, inputs: dict[str, str] | None = None, make_latest: bool = True) -> dict[str, Any]:
        """The version's manifest, written after its files (``LATEST`` last); returns it."""
        try:
            manifest = self.versions.commit(self.hash.hexdigest(), self.partitions, inputs, make_latest)
        finally:
            self.hash.close()
        listed = {join(self.versions.parts, name) for name in manifest["files"]}
        self._remove(lambda uri: uri not in listed)  # the version was stored before, in other files
        return manifest

    def discard(self) -> None:
        """Remove the files this writer stored (none of them is listed by any version yet) and the
        local folders made for them, so a failed first ingest leaves no dataset folder behind."""
        self.hash.close()
        self._remove(lambda uri: True)
        with self._lock:
            folders, self._folders = self._folders, []
        for folder in sorted(set(folders), key=lambda f: len(f.parts), reverse=True):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()

    def _missing_folders(self, uri: str) -> list[Path]:
        """The local folders writing ``uri`` will make (none on S3, which has no folders)."""
        path = self.versions.storage.local_path(uri)
        missing = []
        for folder in path.parents if path is not None else ():
            if folder.exists():
                break
            missing.append(folder)
        return missing

    def _remove(self, which: Callable[[str], bool]) -> None:
        with self._lock:
            written, self._written = self._written, []
        for uri in filter(which, written):
            fs, path = self.versions.storage.filesystem(uri)
            if fs.exists(path):
                fs.rm(path)
