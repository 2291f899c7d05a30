"""The chart: `helm lint` and `helm template` (real helm v4) for the default and the GPU values, and
every rendered object valid against Kubernetes' schemas and, for ray.io kinds, KubeRay's CRDs."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.helm_tools import CHART, helm
from tests.k8s_schemas import load_documents, require_kuberay_schemas, validate_object

VALUES = {"default": [], "gpu": ["-f", str(CHART / "values-gpu.yaml")]}


@pytest.fixture(scope="module")
def chart():
    """The repository's chart as it is: it renders and installs with nothing to fetch."""
    return CHART


def render(chart, *args: str) -> list[dict]:
    return load_documents(helm("template", "rsc", str(chart), "--namespace", "rsc", *args).stdout)


def by_kind(documents: list[dict], kind: str) -> list[dict]:
    return [d for d in documents if d["kind"] == kind]


def ray_clusters(documents: list[dict]) -> list[dict]:
    specs = [d["spec"]["rayClusterConfig"] for d in by_kind(documents, "RayService")]
    return specs + [d["spec"] for d in by_kind(documents, "RayCluster")]


def test_chart_has_no_dependency_to_fetch():
    """Blocker 10: a chart dependency (the KubeRay operator) made `helm template` fail on a fresh clone."""
    assert "dependencies" not in yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert not (CHART / "charts").exists()
    done = helm("template", "rsc", str(CHART))
    assert done.returncode == 0 and "kind: RayService" in done.stdout


def test_crd_check_runs_only_against_a_live_cluster():
    """The install stops with the operator's install command when ray.io/v1 is missing; `helm template`
    (no cluster to ask) renders as usual, and the check can be switched off."""
    template = (CHART / "templates" / "crd-check.yaml").read_text()
    assert (
        'lookup "v1" "Namespace"' in template
        and '.Capabilities.APIVersions.Has "ray.io/v1/RayService"' in template
    )
    assert "helm install kuberay-operator kuberay/kuberay-operator" in template
    helm("template", "rsc", str(CHART), "--set", "kuberay.checkCrds=false")


@pytest.mark.parametrize("values", VALUES.values(), ids=VALUES.keys())
def test_lint_is_clean(chart, values):
    done = helm("lint", "--strict", str(chart), *values)
    assert "0 chart(s) failed" in done.stdout and "[WARNING]" not in done.stdout


@pytest.mark.parametrize("values", VALUES.values(), ids=VALUES.keys())
def test_every_rendered_object_is_valid(chart, values):
    require_kuberay_schemas()
    documents = render(chart, *values)
    kinds = {d["kind"] for d in documents}
    assert {
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "RayService",
        "Deployment",
        "Service",
        "NetworkPolicy",
    } <= kinds
    for document in documents:
        validate_object(document)


def test_gpu_values_add_a_gpu_worker_group(chart):
    default, gpu = render(chart), render(chart, *VALUES["gpu"])
    assert all({g["groupName"] for g in c["workerGroupSpecs"]} == {"cpu"} for c in ray_clusters(default))
    clusters = ray_clusters(gpu)
    assert len(clusters) == 2  # the RayService's and the long-lived RayCluster
    for cluster in clusters:
        (group,) = [g for g in cluster["workerGroupSpecs"] if g["groupName"] == "gpu"]
        pod = group["template"]["spec"]
        assert group["replicas"] == 2
        assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
        assert pod["containers"][0]["image"].endswith("-gpu")
        assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    (service,) = by_kind(gpu, "RayService")
    (deployment,) = yaml.safe_load(service["spec"]["serveConfigV2"])["applications"][0]["deployments"]
    assert deployment["ray_actor_options"]["num_gpus"] == 1


def test_serve_config_names_a_builder_that_accepts_its_args(chart):
    """serveConfigV2 is built from values; its import_path and args must work with the real code."""
    from ray.serve import Application
    from ray.serve._private.api import call_user_app_builder_with_args_if_necessary

    from rsc.serve import builder

    (service,) = by_kind(render(chart, "--set", "serve.modelName=alpha"), "RayService")
    (app,) = yaml.safe_load(service["spec"]["serveConfigV2"])["applications"]
    module, _, function = app["import_path"].partition(":")
    assert module == builder.__name__ and function == "build"
    assert app["args"] == {
        "tracking_uri": "http://rsc-mlflow:5000",
        "model_name": "alpha",
        "alias": "champion",
        "monitor": {
            "enabled": True,
            "statsd_host": "datadog-agent.datadog.svc.cluster.local",
            "statsd_port": 8125,
            "environment": "cluster",
        },
    }
    assert isinstance(call_user_app_builder_with_args_if_necessary(builder.build, app["args"]), Application)
    assert app["deployments"][0]["name"] == "PolicyServer"


def test_serve_metrics_carry_the_clusters_settings(chart):
    """Blocker 6: the RayService passed no monitor settings, so Serve sent to 127.0.0.1 tagged env:local."""
    from rsc.serve.builder import PolicyAppArgs

    (service,) = by_kind(
        render(chart, "--set", "datadog.statsdHost=dd-agent.monitoring", "--set", "datadog.tags.env=prod"),
        "RayService",
    )
    (app,) = yaml.safe_load(service["spec"]["serveConfigV2"])["applications"]
    monitor = PolicyAppArgs.model_validate(app["args"]).monitor
    assert (monitor.statsd_host, monitor.environment, monitor.enabled) == (
        "dd-agent.monitoring",
        "prod",
        True,
    )


def test_ray_clusters_read_their_token_from_the_named_secret(chart):
    """Blocker 7: clients outside the Ray cluster (ray-jobs step pods) need a token Secret of known name."""
    for cluster in ray_clusters(render(chart, "--set", "rayCluster.enabled=true")):
        assert cluster["authOptions"] == {"mode": "token", "secretName": "rsc-ray-token"}
    for cluster in ray_clusters(render(chart, "--set", "ray.auth.existingSecret=")):
        assert cluster["authOptions"] == {"mode": "token"}  # KubeRay then makes one per cluster


def allowed(policy: dict, labels: dict[str, str], port: int) -> bool:
    """Whether a NetworkPolicy lets a pod with ``labels`` (same namespace) in on ``port`` (podSelector
    matchLabels and empty namespaceSelectors only: what the chart uses)."""

    def matches(peer: dict) -> bool:
        if "podSelector" in peer:
            wanted = peer["podSelector"].get("matchLabels", {})
            return all(labels.get(key) == value for key, value in wanted.items())
        return peer.get("namespaceSelector") == {}

    for rule in policy["spec"]["ingress"]:
        ports = [p["port"] for p in rule.get("ports", [])]
        if (not ports or port in ports) and any(matches(peer) for peer in rule.get("from", [])):
            return True
    return False


def test_rayjob_submitter_may_reach_the_dashboard_and_strangers_may_not(chart):
    """Blocker 4: KubeRay's submitter pod carries the operator's labels, not part-of rsc."""
    (ray,) = [p for p in by_kind(render(chart), "NetworkPolicy") if p["metadata"]["name"] == "rsc-ray"]
    submitter = {
        "ray.io/originated-from-crd": "RayJob",
        "ray.io/originated-from-cr-name": "rsc-train-demo-x1",
        "app.kubernetes.io/created-by": "kuberay-operator",
    }
    assert allowed(ray, submitter, 8265)
    assert not allowed(ray, submitter, 6379)
    assert not allowed(ray, {"app": "something-else"}, 8265)
    assert allowed(ray, {"app.kubernetes.io/part-of": "rsc"}, 8265)


def test_mlflow_accepts_its_service_names_as_host(chart):
    """Blocker 1: MLflow 3 answers 403 to a Host it does not know; the chart names the Service's."""
    (deployment,) = [d for d in by_kind(render(chart), "Deployment") if d["metadata"]["name"] == "rsc-mlflow"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (hosts,) = [a.split("=", 1)[1].split(",") for a in container["args"] if a.startswith("--allowed-hosts=")]
    assert {"rsc-mlflow:*", "rsc-mlflow.rsc:*", "rsc-mlflow.rsc.svc.cluster.local:*"} <= set(hosts)
    extra = render(chart, "--set", "mlflow.allowedHosts={mlflow.example.com}")
    (deployment,) = [d for d in by_kind(extra, "Deployment") if d["metadata"]["name"] == "rsc-mlflow"]
    assert any(
        a.endswith(",mlflow.example.com")
        for a in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    )


def test_pipeline_role_is_least_privilege(chart):
    documents = render(chart)
    (role,) = by_kind(documents, "Role")
    assert role["rules"] == [
        {"apiGroups": ["ray.io"], "resources": ["rayjobs"], "verbs": ["create", "get", "watch", "delete"]}
    ]
    (binding,) = by_kind(documents, "RoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "rsc-pipeline", "namespace": "rsc"}]
    workload_sa = [sa for sa in by_kind(documents, "ServiceAccount") if sa["metadata"]["name"] == "rsc"]
    assert workload_sa[0]["automountServiceAccountToken"] is False


def test_pods_run_as_non_root_with_requests_and_limits(chart):
    documents = render(chart, *VALUES["gpu"])
    pods = [c["headGroupSpec"]["template"] for c in ray_clusters(documents)]
    pods += [g["template"] for c in ray_clusters(documents) for g in c["workerGroupSpecs"]]
    pods += [d["spec"]["template"] for d in by_kind(documents, "Deployment")]
    for pod in pods:
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        for container in pod["spec"]["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["resources"]["requests"] and container["resources"]["limits"]


def test_datadog_annotations_scrape_rays_metrics_port(chart):
    for cluster in ray_clusters(render(chart, *VALUES["gpu"])):
        port = cluster["headGroupSpec"]["rayStartParams"]["metrics-export-port"]
        templates = [cluster["headGroupSpec"]["template"]] + [
            g["template"] for g in cluster["workerGroupSpecs"]
        ]
        for template in templates:
            container = template["spec"]["containers"][0]["name"]
            check = json.loads(template["metadata"]["annotations"][f"ad.datadoghq.com/{container}.checks"])
            (instance,) = check["ray"]["instances"]
            assert instance["openmetrics_endpoint"] == f"http://%%host%%:{port}"
            assert "service:rsc" in instance["tags"]
    plain = render(chart, "--set", "datadog.enabled=false")
    assert all("annotations" not in c["headGroupSpec"]["template"]["metadata"] for c in ray_clusters(plain))


def test_mlflow_backend_store_from_a_secret(chart):
    documents = render(chart, "--set", "mlflow.backendStore.existingSecret=mlflow-db")
    (deployment,) = by_kind(documents, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (uri,) = [e for e in container["env"] if e["name"] == "MLFLOW_BACKEND_STORE_URI"]
    assert uri["valueFrom"]["secretKeyRef"] == {"name": "mlflow-db", "key": "backend-store-uri"}
    assert "--backend-store-uri=$(MLFLOW_BACKEND_STORE_URI)" in container["args"]
    assert container["envFrom"] == [{"secretRef": {"name": "rsc-storage"}}]


def test_network_policies_cover_ray_and_mlflow(chart):
    policies = {p["metadata"]["name"]: p for p in by_kind(render(chart), "NetworkPolicy")}
    assert set(policies) == {"rsc-ray", "rsc-mlflow"}
    ray = policies["rsc-ray"]["spec"]
    assert ray["podSelector"] == {"matchLabels": {"rsc.io/ray-node": "true"}}
    ports = {tuple(sorted(p["port"] for p in rule.get("ports", []))) for rule in ray["ingress"]}
    assert (8000,) in ports and (8080,) in ports
    assert not by_kind(render(chart, "--set", "networkPolicy.enabled=false"), "NetworkPolicy")


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("serve.replicas=0", "/serve/replicas"),
        ("image.tag=latest", "/image/tag"),
        ("ray.cpuWorkers.replicas=-1", "/ray/cpuWorkers/replicas"),
        ("mlflow.prot=80", "prot"),
    ],
)
def test_values_schema_rejects_bad_values(chart, setting, message):
    done = helm("template", "rsc", str(chart), "--set", setting, check=False)
    assert done.returncode != 0 and message in done.stderr


def test_notes_tell_how_to_reach_the_endpoint(chart):
    done = helm("install", "rsc", str(chart), "--dry-run=client", "--namespace", "rsc")
    notes = done.stdout.split("NOTES:", 1)[1]
    assert "port-forward svc/rsc-serve-svc 8000:8000" in notes
    assert "--service-account rsc-pipeline" in notes
