"""What the set-up installs and what `rsc doctor` checks on this machine."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from rsc.cluster.local import free_port
from rsc.launch.doctor import render, run_checks
from tests.conftest import CONFIGS, PROJECT, smoke_settings


def test_torch_is_the_cpu_build():
    """`make` installs torch from PyTorch's CPU index (or a CPU wheel pip already finds), never CUDA."""
    import torch

    assert torch.version.cuda is None, f"torch {torch.__version__} is a CUDA build"
    assert torch.__version__.endswith("+cpu"), torch.__version__


@pytest.fixture
def listening_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_doctor_passes_on_a_ready_machine(tmp_path):
    cfg = smoke_settings(tmp_path, f"ray.dashboard_port={free_port()}", f"serve.port={free_port()}")
    checks = {check.name: check for check in run_checks(cfg, PROJECT)}
    assert [name for name, check in checks.items() if check.status == "fail"] == []
    assert {"python", "ray token", "disk", "torch", "chromium", "helm"} <= set(checks)
    assert checks["torch"].detail.endswith("(CPU build)")
    assert checks["chromium"].status == "ok" and checks["helm"].status == "ok"  # `make test` installs both


def test_doctor_names_a_held_port_and_the_setting(tmp_path, listening_port):
    cfg = smoke_settings(tmp_path, f"ray.dashboard_port={listening_port}", f"serve.port={free_port()}")
    failed = [check for check in run_checks(cfg, PROJECT) if check.status == "fail"]
    assert [check.name for check in failed] == [f"port {listening_port}"]
    lines = render(failed)
    assert lines[0].startswith(f"FAIL  port {listening_port}") and "Ray dashboard" in lines[0]
    assert "ray.dashboard_port" in lines[1]


def test_doctor_checks_s3_and_mlflow_when_configured(tmp_path):
    dead = free_port()  # nothing listens here
    cfg = smoke_settings(
        tmp_path,
        "storage.root=s3://nowhere",
        f"storage.s3_endpoint_url=http://127.0.0.1:{dead}",
        f"registry.tracking_uri=http://127.0.0.1:{dead}",
        f"ray.dashboard_port={free_port()}",
        f"serve.port={free_port()}",
    )
    failed = {check.name for check in run_checks(cfg, PROJECT) if check.status == "fail"}
    assert failed == {"s3", "mlflow"}


def test_doctor_command_exits_1_on_a_failed_check(tmp_path, listening_port):
    done = subprocess.run(
        [sys.executable, "-m", "rsc", "doctor", str(CONFIGS / "base.yaml"), str(CONFIGS / "smoke.yaml"),
         f"storage.root=file://{tmp_path}", f"ray.dashboard_port={listening_port}",
         f"serve.port={free_port()}"],
        cwd=PROJECT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert f"FAIL  port {listening_port}" in done.stdout
    assert "1 check(s) failed" in done.stderr
