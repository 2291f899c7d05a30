"""What the chart tells a cluster to run, read from ``helm template``: containers, args, environment.

A rehearsal starts processes with exactly these commands, so that a wrong flag in the chart fails here
and not on a first install. ``$(VAR)`` references in args are expanded as Kubernetes expands them.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

PROJECT = Path(__file__).resolve().parents[1]
CHART = PROJECT / "helm" / "rsc"
HELM = PROJECT / ".tools" / "bin" / "helm"
_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def render(*args: str, release: str = "rsc", namespace: str = "rsc", helm: Path = HELM) -> list[dict]:
    """``helm template`` of the chart as a list of objects."""
    done = subprocess.run(
        [str(helm), "template", release, str(CHART), "--namespace", namespace, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"helm template failed: {done.stderr.strip()}")
    return [document for document in yaml.safe_load_all(done.stdout) if document]


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' expansion: ``$(VAR)`` becomes its value when VAR is defined, ``$$`` becomes ``$``,
    and an undefined reference stays as written."""

    def value(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _REFERENCE.sub(value, text)


def container(documents: list[dict], kind: str, name: str, container_name: str) -> dict[str, Any]:
    """One container of a rendered workload (a Deployment's pod template)."""
    for document in documents:
        if document["kind"] == kind and document["metadata"]["name"] == name:
            for item in document["spec"]["template"]["spec"]["containers"]:
                if item["name"] == container_name:
                    return item
    raise LookupError(f"no container {container_name!r} in {kind}/{name}")


def literal_env(item: dict[str, Any]) -> dict[str, str]:
    """The container's ``env`` entries with literal values (those from Secrets are the caller's)."""
    return {entry["name"]: str(entry["value"]) for entry in item.get("env", []) if "value" in entry}


def command_line(item: dict[str, Any], env: dict[str, str]) -> list[str]:
    """command + args with ``$(VAR)`` expanded from ``env``."""
    return [expand(part, env) for part in [*item.get("command", []), *item.get("args", [])]]


def mlflow_server(
    documents: list[dict], secret_env: dict[str, str], release: str = "rsc"
) -> tuple[list[str], dict]:
    """The MLflow server's command line and environment as its pod would have them.

    ``secret_env`` stands for the Secrets the pod reads (envFrom, secretKeyRef): the store's keys and,
    when the chart takes the backend URI from a Secret, ``MLFLOW_BACKEND_STORE_URI``.
    """
    item = container(documents, "Deployment", f"{release}-mlflow", "mlflow")
    env = {**secret_env, **literal_env(item)}
    return command_line(item, env), env


def serve_config(documents: list[dict], release: str = "rsc") -> dict[str, Any]:
    """The RayService's ``serveConfigV2``, parsed."""
    for document in documents:
        if document["kind"] == "RayService" and document["metadata"]["name"] == release:
            return yaml.safe_load(document["spec"]["serveConfigV2"])
    raise LookupError(f"no RayService {release!r} in the rendered chart")
