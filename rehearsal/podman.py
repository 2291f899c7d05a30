"""podman on this kind of machine: the host settings it needs, in files the project writes itself.

There is no Docker daemon and no container registry here; Debian's podman (4.3) builds and runs images
as root once it is told to use runc (crun 1.8 fails on hybrid cgroups), cgroupfs (no systemd), a file
events log, and ulimits within the host's hard limit. Those settings live in ``.build/podman/`` and are
handed to every podman call through ``CONTAINERS_CONF`` and ``CONTAINERS_STORAGE_CONF``.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
BUILD = PROJECT / ".build"
CONF = BUILD / "podman"
PACKAGES = ("podman", "buildah", "mmdebstrap", "runc", "uidmap")


def ensure_installed() -> None:
    """podman and mmdebstrap from Debian, installed when missing (as root, as CI's set-up does)."""
    if shutil.which("podman") and shutil.which("mmdebstrap") and shutil.which("runc"):
        return
    if not Path("/etc/debian_version").exists() or os.geteuid() != 0:
        raise SystemExit(
            f"podman, mmdebstrap and runc are needed; on Debian: apt-get install {' '.join(PACKAGES)}"
        )
    print(f"installing {', '.join(PACKAGES)} (apt-get)", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", *PACKAGES],
        check=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        stdout=subprocess.DEVNULL,
    )


def environment() -> dict[str, str]:
    """The process environment with podman's settings files (written on first use)."""
    CONF.mkdir(parents=True, exist_ok=True)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nofile = hard if hard != resource.RLIM_INFINITY else 1048576
    (CONF / "containers.conf").write_text(
        "[containers]\n"
        f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc=32768:32768"]\n'
        "[engine]\n"
        'runtime = "runc"\n'
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
    )
    (CONF / "storage.conf").write_text(
        '[storage]\ndriver = "overlay"\nrunroot = "/run/containers/storage"\n'
        'graphroot = "/var/lib/containers/storage"\n'
    )
    return {
        **os.environ,
        "CONTAINERS_CONF": str(CONF / "containers.conf"),
        "CONTAINERS_STORAGE_CONF": str(CONF / "storage.conf"),
    }


def podman(*args: str, check: bool = True, capture: bool = False, **kwargs) -> subprocess.CompletedProcess:
    """One podman command with the project's settings."""
    return subprocess.run(
        ["podman", *args], env=environment(), check=check, capture_output=capture, text=True, **kwargs
    )


def image_exists(name: str) -> bool:
    return podman("image", "exists", name, check=False).returncode == 0
