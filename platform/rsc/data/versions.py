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
"""

from __future__ import annotations

import hashlib
import io
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from rsc.core.schema import SYMBOL, TIMESTAMP
from rsc.storage import Storage, join
from rsc.storage.store import MANIFEST, MANIFEST_FORMAT, sha256_bytes

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
        column = rows[name]
        if pd.api.types.is_datetime64_any_dtype(column):
            zone = column.dt.tz
            stamps = column.dt.tz_convert("UTC").dt.tz_localize(None) if zone is not None else column
            kind = f"time[{zone}]"  # naive and zoned stamps of the same instants are different tables
            data = stamps.to_numpy("datetime64[ns]").view(np.int64).tobytes()
        elif pd.api.types.is_bool_dtype(column):
            kind, data = "bool", column.to_numpy(np.uint8).tobytes()
        elif pd.api.types.is_numeric_dtype(column):
            kind, data = "number", column.to_numpy(np.float64).tobytes()
        else:
            kind, data = "text", "\0".join(column.astype(str)).encode()
        digest.update(f"{name}\0{kind}\0{len(column)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


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
        latest; returns its manifest. The version's manifest is written after its files, ``LATEST``
        last; the same bars stored again are the same version, unchanged."""
        version = content_hash(frame)
        if self.storage.exists(self._manifest_uri(version)):  # a version never changes once written
            if make_latest:
                self.storage.write_bytes(join(self.home, LATEST), version.encode())
            return self.manifest(version)
        ordered = frame.sort_values([SYMBOL, TIMESTAMP], kind="stable", ignore_index=True)
        table = pa.Table.from_pandas(ordered, preserve_index=False)
        partitions: dict[str, dict[str, Any]] = {}
        for symbol, rows in ordered.groupby(SYMBOL, sort=True):
            part = table.slice(int(rows.index[0]), len(rows))
            buffer = io.BytesIO()
            pq.write_table(part, buffer, compression="zstd")
            data = buffer.getvalue()
            digest = sha256_bytes(data)
            name = f"{SYMBOL}={quote(str(symbol), safe='')}/part-{digest[:16]}.parquet"
            if not self.storage.exists(join(self.parts, name)):
                self.storage.write_bytes(join(self.parts, name), data)
            partitions[str(symbol)] = {"file": name, "sha256": digest, "rows": part.num_rows}
        listing = "".join(f"{key}\t{p['sha256']}\n" for key, p in partitions.items())
        stamps = ordered[TIMESTAMP]
        manifest = {
            "format": MANIFEST_FORMAT,
            "sha256": version,
            "listing_sha256": sha256_bytes(listing.encode()),
            "rows": len(ordered),
            "schema": {field.name: str(field.type) for field in table.schema},
            "time_range": [str(stamps.min()), str(stamps.max())] if len(stamps) else None,
            "partition_by": SYMBOL,
            "partitions": partitions,
            "files": [p["file"] for p in partitions.values()],
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
        tables = [pq.read_table(io.BytesIO(self.storage.read_bytes(join(self.parts, f)))) for f in files]
        return pa.concat_tables(tables).to_pandas()

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
