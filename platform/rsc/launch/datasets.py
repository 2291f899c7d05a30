"""What keeps a dataset version: runs and registered models that reference it (``rsc data versions``),
and removing the versions nothing keeps (``rsc data gc``).

It sits above the data and the registry code because it asks both: a version is referenced by a run
root whose ``bars/manifest.json`` points at it (every execution, and every cached pipeline step's
output, is a run root) and by every registered model version whose training run recorded its hash
(``rsc.data.*_sha256`` tags; hashes recorded before versions existed match the version's older
Parquet-file hash). Unreferenced versions are kept for a grace period after they were written, so that
a run that has just ingested but not yet trained does not lose its data.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass

from rsc.data.versions import DATASETS, DatasetVersions, dataset_names
from rsc.storage import Storage, join
from rsc.storage.store import MANIFEST

log = logging.getLogger(__name__)

DAY_S = 86_400.0


@dataclass(frozen=True)
class VersionInfo:
    dataset: str
    version: str  # content hash
    listing_sha256: str  # the hash over its Parquet files (what runs recorded before versions existed)
    rows: int
    size_bytes: int
    written_at: float
    referrers: tuple[str, ...]


def run_referrers(storage: Storage, root: str) -> dict[str, list[str]]:
    """Version hash -> the run roots whose bars point at it (``<name>/<id>`` or ``<name>``)."""
    fs, path = storage.filesystem(root)
    base = path.rstrip("/")
    found: dict[str, list[str]] = defaultdict(list)
    for pattern in (f"{base}/*/bars/{MANIFEST}", f"{base}/*/*/bars/{MANIFEST}"):
        for manifest_path in fs.glob(pattern):
            relative = manifest_path.removeprefix(base).strip("/").removesuffix(f"/bars/{MANIFEST}")
            if relative.startswith(f"{DATASETS}/"):
                continue
            manifest = storage.read_json(join(root, relative, "bars", MANIFEST))
            if manifest.get("dataset"):
                found[manifest["sha256"]].append(f"run {relative}")
    return found


def model_referrers(tracking_uri: str) -> dict[str, list[str]]:
    """Data hash -> the registered model versions whose training run recorded it."""
    from rsc.registry.tracking import data_hash_references

    return data_hash_references(tracking_uri)


def all_referrers(storage: Storage, root: str, tracking_uri: str | None) -> dict[str, list[str]]:
    """Data hash -> every run root and registered model version that references it (read once)."""
    found = defaultdict(list, run_referrers(storage, root))
    for digest, models in (model_referrers(tracking_uri) if tracking_uri else {}).items():
        found[digest] += models
    return found


def list_versions(
    storage: Storage, root: str, name: str, referrers: dict[str, list[str]] | None = None
) -> list[VersionInfo]:
    """Every version of dataset ``name``, newest first, with what references it (``referrers`` from
    :func:`all_referrers`; None: the run roots only)."""
    versions = DatasetVersions.of(storage, root, name)
    known = run_referrers(storage, root) if referrers is None else referrers
    out = []
    for version in versions.names():
        manifest = versions.manifest(version)
        legacy = manifest.get("listing_sha256", "")
        refs = known.get(version, []) + known.get(legacy, [])
        out.append(
            VersionInfo(
                name,
                version,
                legacy,
                int(manifest["rows"]),
                versions.size_bytes(manifest),
                versions.written_at(version),
                tuple(sorted(set(refs))),
            )
        )
    return sorted(out, key=lambda info: info.written_at, reverse=True)


def collect_garbage(
    storage: Storage,
    root: str,
    tracking_uri: str | None,
    grace_days: float = 7.0,
    dry_run: bool = False,
    now: float | None = None,
) -> list[VersionInfo]:
    """Remove every version no run and no registered model references and older than the grace period,
    then the files no remaining version lists; returns the versions removed (or that would be)."""
    now = time.time() if now is None else now
    referrers = all_referrers(storage, root, tracking_uri)
    removed = []
    for name in dataset_names(storage, root):
        versions = DatasetVersions.of(storage, root, name)
        latest = versions.latest()
        for info in list_versions(storage, root, name, referrers):
            young = now - info.written_at < grace_days * DAY_S
            if info.referrers or young or (latest and info.version == latest["sha256"]):
                continue
            removed.append(info)
            if not dry_run:
                versions.remove(info.version)
                log.info("data gc: removed %s version %s (%d rows)", name, info.version[:12], info.rows)
        if not dry_run:
            versions.sweep(min_age_s=grace_days * DAY_S, now=now)
    return removed
