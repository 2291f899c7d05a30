"""Validation of what the project would send to a cluster: KubeRay CRDs for ray.io kinds, else
Kubernetes' own schemas (kubernetes-validate).

The KubeRay CRDs are test-time data in ``../shared/schemas/kuberay`` (beside the checkout, never
copied into it); tests that need them skip, saying why, when that folder is absent. Validation is
strict: an object schema that lists its properties rejects any other key, as the API server does
with field validation ``Strict`` (a misspelt field fails here instead of being dropped there).
"""

from __future__ import annotations

import copy
import functools
import os
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[1]
# ``shared/`` beside the checkout; RSC_SHARED points elsewhere (a checkout whose parent has none).
SHARED = Path(os.environ.get("RSC_SHARED") or PROJECT.parent / "shared")
KUBERAY_SCHEMAS = SHARED / "schemas" / "kuberay"
KUBERNETES_VERSION = "1.35"
CRD_FILES = {
    "RayJob": "ray.io_rayjobs.yaml",
    "RayCluster": "ray.io_rayclusters.yaml",
    "RayService": "ray.io_rayservices.yaml",
}


def require_kuberay_schemas() -> Path:
    if not KUBERAY_SCHEMAS.is_dir():
        pytest.skip(f"KubeRay CRDs not found at {KUBERAY_SCHEMAS} (test-time data beside the checkout)")
    return KUBERAY_SCHEMAS


def _strict(schema: Any) -> Any:
    """Close every object schema that lists properties and does not preserve unknown fields."""
    if isinstance(schema, dict):
        schema = {key: _strict(value) for key, value in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


@functools.cache
def kuberay_validator(kind: str, version: str = "v1") -> jsonschema.Draft7Validator:
    # The CRDs are megabytes of YAML: the C loader reads them in a fraction of the pure-Python time.
    crd = yaml.load((require_kuberay_schemas() / CRD_FILES[kind]).read_text(), Loader=yaml.CSafeLoader)
    (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    schema = _strict(copy.deepcopy(served["schema"]["openAPIV3Schema"]))
    return jsonschema.Draft7Validator(schema)


def kuberay_errors(document: dict[str, Any]) -> list[str]:
    """Every schema error of a ray.io object, as 'path: message' lines (empty when valid)."""
    assert document.get("apiVersion") == "ray.io/v1", document.get("apiVersion")
    validator = kuberay_validator(document["kind"])
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    ]


def validate_object(document: dict[str, Any]) -> None:
    """Fail the test with every error if ``document`` is not a valid object of its kind."""
    name = f"{document.get('kind')}/{document.get('metadata', {}).get('name')}"
    if document.get("apiVersion", "").startswith("ray.io/"):
        errors = kuberay_errors(document)
        assert not errors, f"{name} does not match the KubeRay CRD:\n" + "\n".join(errors)
        return
    try:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = "/".join(str(p) for p in error.path)
        pytest.fail(f"{name} is not a valid Kubernetes {KUBERNETES_VERSION} object: {path}: {error.message}")


def load_documents(text: str) -> list[dict[str, Any]]:
    """Every non-empty YAML document of a manifest stream."""
    return [doc for doc in yaml.safe_load_all(text) if doc]
