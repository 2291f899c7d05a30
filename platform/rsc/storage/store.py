"""The one place that turns URIs into bytes: ``file://`` and ``s3://`` through fsspec.

Datasets are written so that readers never see a partial one, on any filesystem: data files get
content-addressed names and the manifest (which lists them) is written last as a single object.
A crash before the manifest lands leaves the previous version intact; orphaned files are removed
on the next successful write.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from rsc.config.settings import StorageSettings
from rsc.core.schema import TIMESTAMP

MANIFEST = "manifest.json"


def join(uri: str, *parts: str) -> str:
    """Join URI path segments with single slashes."""
    return "/".join([uri.rstrip("/"), *(p.strip("/") for p in parts)])


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Storage:
    """Reads and writes under any supported URI; holds only connection settings."""

    s3_endpoint_url: str | None = None

    @classmethod
    def from_settings(cls, settings: StorageSettings) -> Storage:
        return cls(s3_endpoint_url=settings.s3_endpoint_url)

    def filesystem(self, uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
        if uri.startswith("s3://"):
            options: dict[str, Any] = {}
            if self.s3_endpoint_url:
                options["client_kwargs"] = {"endpoint_url": self.s3_endpoint_url}
            fs = fsspec.filesystem("s3", **options)
            return fs, uri.removeprefix("s3://")
        if uri.startswith("file://") or "://" not in uri:
            return fsspec.filesystem("file"), uri.removeprefix("file://")
        raise ValueError(f"unsupported URI scheme in {uri!r}: use file:// or s3://")

    # -- bytes and JSON -------------------------------------------------------------------------
    def exists(self, uri: str) -> bool:
        fs, path = self.filesystem(uri)
        return fs.exists(path)

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
        self, uri: str, frame: pd.DataFrame, inputs: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """Write ``frame`` as a Parquet dataset with a manifest; returns the manifest.

        Args:
            inputs: name -> sha256 of the datasets this one was derived from (lineage).
        """
        table = pa.Table.from_pandas(frame, preserve_index=False)
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="zstd")
        data = buffer.getvalue()
        digest = sha256_bytes(data)
        file_name = f"part-{digest[:16]}.parquet"
        self.write_bytes(join(uri, file_name), data)
        manifest = {
            "sha256": digest,
            "files": [file_name],
            "rows": table.num_rows,
            "schema": {field.name: str(field.type) for field in table.schema},
            "time_range": _time_range(frame),
            "inputs": dict(sorted((inputs or {}).items())),
            "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self.write_json(join(uri, MANIFEST), manifest)
        self._remove_orphans(uri, keep={MANIFEST, file_name})
        return manifest

    def read_manifest(self, uri: str) -> dict[str, Any]:
        manifest_uri = join(uri, MANIFEST)
        if not self.exists(manifest_uri):
            raise FileNotFoundError(f"no dataset at {uri} (missing {MANIFEST})")
        return self.read_json(manifest_uri)

    def read_dataset(self, uri: str) -> pd.DataFrame:
        """Read the files the manifest lists, never whatever else lies in the folder."""
        manifest = self.read_manifest(uri)
        tables = [pq.read_table(io.BytesIO(self.read_bytes(join(uri, name)))) for name in manifest["files"]]
        return pa.concat_tables(tables).to_pandas()

    def _remove_orphans(self, uri: str, keep: set[str]) -> None:
        fs, path = self.filesystem(uri)
        for entry in fs.ls(path, detail=False):
            name = entry.rstrip("/").rsplit("/", 1)[-1]
            if name not in keep:
                fs.rm(entry, recursive=True)

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


def _time_range(frame: pd.DataFrame) -> list[str] | None:
    if TIMESTAMP not in frame.columns or frame.empty:
        return None
    return [str(frame[TIMESTAMP].min()), str(frame[TIMESTAMP].max())]
