"""k8s/: per-run and per-developer manifests valid against Kubernetes and KubeRay schemas, nothing
shared with the chart, the RayJob template's filled fields marked, and the Datadog JSON consistent
with the metrics the platform and Ray emit."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from rsc.cluster import rayjob
from rsc.config import load_settings
from rsc.monitor import names
from tests.helm_tools import CHART, helm
from tests.k8s_schemas import PROJECT, load_documents, require_kuberay_schemas, validate_object

K8S = PROJECT / "k8s"
MANIFESTS = sorted(K8S.rglob("*.yaml"))
RSC_METRICS = {value for key, value in vars(names).items() if key.isupper() and isinstance(value, str)}
RSC_CHECKS = set(names.CHECKS.values())
# Metric names of Datadog's Ray check that the dashboard and monitors use.
RAY_METRICS = {
    "ray.node.cpu_utilization",
    "ray.node.gpus_utilization",
    "ray.node.mem_used",
    "ray.node.mem_total",
    "ray.object_store_memory",
    "ray.serve.num_http_requests.count",
    "ray.serve.num_http_error_requests.count",
    "ray.serve.deployment.replica.healthy",
}
METRIC = re.compile(r"[a-z]+:((?:rsc|ray)\.[a-z_.0-9]+?)(?:\.(?:95percentile|avg|max))?\{")


def test_there_is_something_to_check():
    names_found = {path.relative_to(K8S).as_posix() for path in MANIFESTS}
    assert {"rayjob.yaml", "rbac.yaml", "dev/namespace.yaml", "dev/minio.yaml"} <= names_found


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.relative_to(K8S).as_posix())
def test_every_manifest_is_valid(path):
    documents = load_documents(path.read_text())
    assert documents, f"{path} holds no object"
    for document in documents:
        if document["apiVersion"].startswith("ray.io/"):
            require_kuberay_schemas()
        validate_object(document)


def test_nothing_lives_in_both_k8s_and_the_chart(tmp_path):
    chart = CHART
    rendered = load_documents(
        helm("template", "rsc", str(chart), "-f", str(chart / "values-gpu.yaml")).stdout
    )
    in_chart = {(d["kind"], d["metadata"]["name"]) for d in rendered}
    in_k8s = {
        (d["kind"], d["metadata"]["name"]) for path in MANIFESTS for d in load_documents(path.read_text())
    }
    assert not in_chart & in_k8s
    assert not {kind for kind, _ in in_k8s} & {"RayService", "RayCluster"}  # long-lived Ray: the chart's


def test_rbac_grants_what_the_launcher_calls_and_matches_the_charts(tmp_path):
    (role,) = [d for d in load_documents((K8S / "rbac.yaml").read_text()) if d["kind"] == "Role"]
    expected = [
        {"apiGroups": ["ray.io"], "resources": ["rayjobs"], "verbs": ["create", "get", "watch", "delete"]}
    ]
    assert role["rules"] == expected
    chart = CHART
    (chart_role,) = [
        d for d in load_documents(helm("template", "rsc", str(chart)).stdout) if d["kind"] == "Role"
    ]
    assert chart_role["rules"] == expected


def _leaf_changes(before, after, key=""):
    """Keys whose values differ between two documents (the last key of each changed path)."""
    if isinstance(before, dict) and isinstance(after, dict):
        for name in set(before) | set(after):
            yield from _leaf_changes(before.get(name), after.get(name), name)
    elif isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        for old, new in zip(before, after, strict=True):
            yield from _leaf_changes(old, new, key)
    elif before != after:
        yield key


def test_every_field_the_launcher_fills_is_marked_in_the_template():
    text = (K8S / "rayjob.yaml").read_text()
    template = rayjob.load_template(K8S / "rayjob.yaml")
    cfg = load_settings(
        [PROJECT / "configs" / "base.yaml", PROJECT / "configs" / "cluster.yaml"],
        [
            "cluster.gpus=2",
            "cluster.cpu_workers=3",
            "cluster.head_cpus=3",
            "cluster.cpu_worker_memory=9Gi",
            "cluster.gpu_worker_cpus=7",
            "cluster.service_account=steps",
            "cluster.ttl_after_finished_s=60",
            "cluster.active_deadline_s=120",
            "cluster.backoff_limit=1",
            "cluster.image=registry.example/rsc:1-ray2.60.0",
            "cluster.gpu_image=registry.example/rsc:1-ray2.60.0-gpu",
            "cluster.gpu_node_selector={pool: a100}",
            "cluster.gpu_tolerations=[{key: dedicated, operator: Equal, value: ml, effect: NoSchedule}]",
        ],
    )
    built = rayjob.build_rayjob(
        cfg.cluster,
        template,
        name="rsc-train-x-000000",
        stage="tune",
        command=["python", "-V"],
        env={"A": "1"},
    )
    changed = set(_leaf_changes(template, built)) - {"envFrom"}  # envFrom is added, not in the template
    assert {"image", "replicas", "entrypoint", "serviceAccountName"} <= changed
    marked, pending = set(), False
    for line in text.splitlines():  # a key is marked on its own line or by a comment line above it
        if line.strip().startswith("#"):
            pending = pending or "(filled)" in line
            continue
        if "(filled)" in line or pending:
            marked.add(line.split(":")[0].strip(" -"))
        pending = False
    unmarked = {key for key in changed if not any(key in m or m in key for m in marked)}
    # cpu/memory/nvidia.com/gpu/limits/requests sit under a `resources:` line marked (filled).
    unmarked -= {"cpu", "memory", "nvidia.com/gpu", "key", "operator", "value", "effect", "pool"}
    unmarked -= {"nvidia.com/gpu.present", "rsc.io/stage", "minReplicas", "maxReplicas", "name"}
    assert not unmarked, f"fields the launcher fills without a (filled) comment: {sorted(unmarked)}"
    assert "(filled)" in next(line for line in text.splitlines() if line.strip().startswith("resources:"))


def test_dashboard_uses_known_metrics_and_declared_variables():
    dashboard = json.loads((K8S / "datadog" / "dashboard.json").read_text())
    assert dashboard["layout_type"] == "ordered" and dashboard["title"]
    variables = {v["name"] for v in dashboard["template_variables"]}
    widgets = [
        widget["definition"] for group in dashboard["widgets"] for widget in group["definition"]["widgets"]
    ]
    queries = [request["q"] for widget in widgets for request in widget.get("requests", [])]
    checks = {widget["check"] for widget in widgets if widget["type"] == "check_status"}
    assert checks == RSC_CHECKS, "every service check of the paper trader has a status widget"
    assert len(queries) >= 10
    used = {m for q in queries for m in METRIC.findall(q)}
    assert used - RSC_METRICS - RAY_METRICS == set()
    assert used >= RSC_METRICS, "every paper-trading metric has a graph"
    for query in queries:
        assert set(re.findall(r"\$(\w+)", query)) <= variables, query


def test_monitors_are_consistent():
    monitors = json.loads((K8S / "datadog" / "monitors.json").read_text())
    assert len(monitors) >= 4
    watched = set()
    for monitor in monitors:
        assert monitor["type"] in {"query alert", "metric alert", "service check"}
        assert monitor["message"] and "@" in monitor["message"], monitor["name"]
        assert all(tag.split(":")[0] in {"service", "team", "env"} for tag in monitor["tags"])
        if monitor["type"] == "service check":
            check = re.fullmatch(
                r'"([a-z_.]+)"\.over\("env:cluster"\)\.by\("strategy"\)\.last\(\d+\)'
                r"\.count_by_status\(\)",
                monitor["query"],
            ).group(1)
            assert check in RSC_CHECKS and monitor["options"]["thresholds"]["critical"] >= 1
            watched.add(check)
            continue
        critical = monitor["options"]["thresholds"]["critical"]
        comparator, bound = re.search(r"([<>]=?)\s*(-?[0-9.]+)\s*$", monitor["query"]).groups()
        assert float(bound) == critical, monitor["name"]
        warning = monitor["options"]["thresholds"].get("warning")
        if warning is not None:  # a warning fires before the critical threshold
            assert (warning < critical) if comparator.startswith(">") else (warning > critical)
        assert {m for m in METRIC.findall(monitor["query"])} <= RSC_METRICS | RAY_METRICS
    assert watched >= {names.CHECKS[check] for check in ("risk", "model", "data")}


def test_dev_bootstrap_wires_minio_to_the_storage_secret():
    documents = [d for path in sorted((K8S / "dev").glob("*.yaml")) for d in load_documents(path.read_text())]
    namespaces = {d["metadata"].get("namespace") for d in documents if d["kind"] != "Namespace"}
    (namespace,) = [d["metadata"]["name"] for d in documents if d["kind"] == "Namespace"]
    assert namespaces == {namespace}
    secrets = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Secret"}
    assert set(secrets) == {"rsc-storage", "rsc-ray-token"}
    assert set(secrets["rsc-ray-token"]["stringData"]) == {"auth_token"}  # the key KubeRay reads
    secret = secrets["rsc-storage"]
    keys = set(secret["stringData"])
    cluster = yaml.safe_load((PROJECT / "configs" / "cluster.yaml").read_text())["cluster"]
    assert secret["metadata"]["name"] == cluster["env_secret"]
    (minio,) = [d for d in documents if d["kind"] == "Deployment"]
    refs = {
        e["valueFrom"]["secretKeyRef"]["key"]
        for e in minio["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert refs == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}  # MinIO's root user
    assert keys == refs | {"AWS_ENDPOINT_URL"}  # every pod's S3 client finds MinIO by it
