"""The kuberay launcher: RayJobs that match KubeRay's CRD, and create/watch/fail/cancel against a
stand-in API server (tests/kube_standin.py: a real HTTP server on 127.0.0.1, not a cluster)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import textwrap

import pytest
import yaml

from rsc.cluster import kuberay, rayjob
from rsc.config import ConfigError
from rsc.launch.stages import launch_stage, run_stage, stage_command
from rsc.storage import Storage
from tests.conftest import PROJECT, smoke_settings
from tests.k8s_schemas import kuberay_errors, require_kuberay_schemas, validate_object
from tests.kube_standin import EntrypointOperator, StandInApiServer, write_kubeconfig

NAMESPACE = "rsc-test"
TEMPLATE = PROJECT / "k8s" / "rayjob.yaml"


@pytest.fixture(autouse=True)
def _schemas():
    require_kuberay_schemas()


def kuberay_settings(tmp_path, *overrides: str):
    return smoke_settings(
        tmp_path / "store",
        "cluster.launcher=kuberay",
        f"cluster.workdir={PROJECT}",
        "cluster.wait_timeout_s=60",
        "cluster.watch_s=2",
        *overrides,
    )


def build(tmp_path, *overrides: str, stage: str = "train") -> dict:
    cfg = kuberay_settings(tmp_path, *overrides)
    command = stage_command(
        stage, cfg, {"split": "s3://b/split", "scaler": "s3://b/scaler.json"}, "s3://b/r.json"
    )
    return rayjob.build_rayjob(
        cfg.cluster,
        rayjob.load_template(TEMPLATE),
        name=rayjob.rayjob_name(stage, cfg.run.name),
        stage=stage,
        command=command,
        env={"RAY_AUTH_MODE": "token"},
    )


def groups(job: dict) -> dict[str, dict]:
    return {g["groupName"]: g for g in job["spec"]["rayClusterSpec"]["workerGroupSpecs"]}


def test_template_itself_is_a_valid_rayjob():
    template = rayjob.load_template(TEMPLATE)
    validate_object(template)
    assert template["spec"]["shutdownAfterJobFinishes"] is True


@pytest.mark.parametrize(
    ("gpus", "per_worker", "gpu_workers"), [(0, 1, 0), (1, 1, 1), (4, 2, 2)], ids=["cpu", "1gpu", "4gpu"]
)
def test_generated_rayjob_matches_crd_and_settings(tmp_path, gpus, per_worker, gpu_workers):
    job = build(
        tmp_path, f"cluster.gpus={gpus}", f"cluster.gpus_per_worker={per_worker}", "cluster.env_secret=s3"
    )
    validate_object(job)
    spec = job["spec"]
    assert spec["shutdownAfterJobFinishes"] is True
    assert (spec["ttlSecondsAfterFinished"], spec["activeDeadlineSeconds"], spec["backoffLimit"]) == (
        600,
        21600,
        0,
    )
    assert spec["rayClusterSpec"]["rayVersion"] == "2.60.0"
    assert yaml.safe_load(spec["runtimeEnvYAML"]) == {"env_vars": {"RAY_AUTH_MODE": "token"}}
    by_name = groups(job)
    assert by_name["cpu"]["replicas"] == 2
    cpu_container = by_name["cpu"]["template"]["spec"]["containers"][0]
    assert cpu_container["resources"]["limits"] == {"cpu": "4", "memory": "8Gi"}
    assert cpu_container["envFrom"] == [{"secretRef": {"name": "s3"}}]
    if not gpus:
        assert set(by_name) == {"cpu"}
        return
    gpu = by_name["gpu"]
    assert gpu["replicas"] == gpu["minReplicas"] == gpu["maxReplicas"] == gpu_workers
    pod = gpu["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == per_worker
    assert pod["containers"][0]["image"].endswith("-gpu")
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def test_entrypoint_runs_the_stage_with_remote_settings(tmp_path):
    job = build(tmp_path, "cluster.gpus=2")
    words = shlex.split(job["spec"]["entrypoint"])
    assert words[:3] == ["cd", str(PROJECT), "&&"]
    assert words[3:8] == ["python", "-m", "rsc", "stage", "train"]
    settings = json.loads(words[words.index("--settings-json") + 1])
    assert settings["ray"]["address"] == "auto"  # the job's driver joins the RayJob's cluster
    assert settings["cluster"]["launcher"] == "local"  # ... and runs the stage there, not another RayJob
    assert settings["cluster"]["gpus"] == 2  # so the stage asks RLlib for two GPU learners
    assert words[-2:] == ["--result-uri", "s3://b/r.json"]


def test_names_are_dns_labels_and_unique(tmp_path):
    names = {rayjob.rayjob_name("train", "My_Run.With Spaces and a very long name indeed") for _ in range(20)}
    assert len(names) == 20
    for name in names:
        assert len(name) <= rayjob.MAX_NAME
        assert name.startswith("rsc-train-my-run-with-spaces")
        assert all(c.isalnum() or c == "-" for c in name) and name == name.lower()


def test_strict_validation_rejects_a_misspelt_field(tmp_path):
    job = build(tmp_path)
    job["spec"]["shutdownAfterJobFinish"] = True  # typo: the API server would drop it silently
    job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["replicas"] = "two"
    errors = kuberay_errors(job)
    assert any("shutdownAfterJobFinish" in e for e in errors)
    assert any("replicas" in e for e in errors)


def test_settings_reject_partial_gpu_workers():
    with pytest.raises(ConfigError, match=r"multiple of cluster\.gpus_per_worker"):
        smoke_settings(PROJECT, "cluster.gpus=3", "cluster.gpus_per_worker=2")
    with pytest.raises(ConfigError, match="no workers"):
        smoke_settings(PROJECT, "cluster.gpus=0", "cluster.cpu_workers=0")


# --- against the stand-in API server -------------------------------------------------------------


@pytest.fixture
def api(tmp_path, monkeypatch):
    """The stand-in API server with a kube config pointing at it (as a developer's or a pod's would)."""

    def start(on_create=None, validate=kuberay_errors) -> StandInApiServer:
        server = StandInApiServer(validate=validate, on_create=on_create).__enter__()
        started.append(server)
        monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kubeconfig", server, NAMESPACE)))
        return server

    started: list[StandInApiServer] = []
    yield start
    for server in started:
        server.__exit__(None, None, None)


def test_tune_step_runs_as_a_rayjob_and_returns_the_stage_result(tmp_path, api):
    operator = EntrypointOperator()
    server = api(on_create=operator)
    cfg = kuberay_settings(tmp_path, "tune.enabled=false", "cluster.gpus=2")
    inputs = {"split": "file:///nowhere/split", "scaler": "file:///nowhere/scaler.json"}

    result = launch_stage("tune", cfg, inputs)

    assert result["best_params"] == {} and result["trials"] == 0, operator.outputs
    assert result["best_params_uri"] == f"{cfg.run_root}/tune/best_params.json"
    assert Storage.from_settings(cfg.storage).read_json(result["best_params_uri"])["best_params"] == {}
    (job,) = server.created
    assert job["metadata"]["namespace"] == NAMESPACE  # from the kube config's context
    assert groups(job)["gpu"]["replicas"] == 2
    assert not kuberay_errors({k: v for k, v in job.items() if k != "status"})
    assert server.methods().count("POST") == 1
    assert "DELETE" not in server.methods()  # a finished job is left to KubeRay's TTL
    paths = [path for method, path in server.requests if method == "GET"]
    assert all("watch=True" in p or p.endswith(job["metadata"]["name"]) for p in paths)  # no list


def test_in_process_launcher_gives_the_same_result(tmp_path):
    cfg = smoke_settings(tmp_path / "store", "tune.enabled=false")
    inputs = {"split": "file:///nowhere/split", "scaler": "file:///nowhere/scaler.json"}
    local = launch_stage("tune", cfg, inputs)
    assert json.dumps(local) == json.dumps(run_stage("tune", cfg, inputs))  # NaN-safe equality
    assert local["best_params_uri"].startswith(cfg.run_root)


def test_failed_rayjob_fails_the_step_with_kuberays_message(tmp_path, api):
    message = "Job entrypoint command failed with exit code 1: CUDA error: no kernel image"
    server = api(on_create=EntrypointOperator(fail_message=message))
    cfg = kuberay_settings(tmp_path, "cluster.gpus=1")
    inputs = {"split": "file:///s", "scaler": "file:///c", "best_params": "file:///b"}
    with pytest.raises(
        kuberay.RayJobFailed, match=r"failed \(AppFailed, job status FAILED\): Job entrypoint"
    ):
        launch_stage("train", cfg, inputs)
    assert "DELETE" not in server.methods()  # kept until its TTL, for its logs


def test_stage_that_exits_non_zero_on_the_cluster_fails_the_step(tmp_path, api):
    operator = EntrypointOperator()
    api(on_create=operator)
    cfg = kuberay_settings(tmp_path)
    with pytest.raises(kuberay.RayJobFailed, match="exit code 1"):
        launch_stage("features", cfg, {"bars": "file:///nowhere/bars"})
    assert "/nowhere/bars" in operator.outputs[0]  # the stage's own error is in the job's log


def test_rejected_rayjob_is_a_clear_error(tmp_path, api):
    api(validate=lambda body: ["spec.entrypoint: Required value"])
    with pytest.raises(kuberay.client.ApiException) as raised:
        kuberay.run_rayjob(build(tmp_path), None, timeout_s=5)
    assert raised.value.status == 422 and "Required value" in raised.value.body


def test_timeout_deletes_the_rayjob(tmp_path, api):
    server = api(on_create=EntrypointOperator(run_entrypoint=False))  # stays Running
    job = build(tmp_path)
    with pytest.raises(TimeoutError, match="not finished after 2s"):
        kuberay.run_rayjob(job, None, timeout_s=2, watch_s=1)
    assert server.methods()[-1] == "DELETE"
    assert not server.objects


def test_watch_recovers_from_a_compacted_history(tmp_path, api):
    def operator(server: StandInApiServer, job: dict) -> None:
        namespace, name = job["metadata"]["namespace"], job["metadata"]["name"]
        server.set_status(namespace, name, jobDeploymentStatus="Running", jobStatus="RUNNING")
        server.compacted_below = server.version + 1  # every watch from an older version: 410 Gone
        server.wait_for(lambda: sum("watch=True" in p for _, p in server.requests) >= 1)
        server.set_status(namespace, name, jobDeploymentStatus="Complete", jobStatus="SUCCEEDED")

    server = api(on_create=operator)
    outcome = kuberay.run_rayjob(build(tmp_path), None, timeout_s=30, watch_s=1)
    assert outcome.job_status == "SUCCEEDED"
    assert server.methods().count("GET") >= 2  # re-read after the 410


def test_deleted_elsewhere_fails_the_step(tmp_path, api):
    def operator(server: StandInApiServer, job: dict) -> None:
        namespace, name = job["metadata"]["namespace"], job["metadata"]["name"]
        server.set_status(namespace, name, jobDeploymentStatus="Running")
        with server.changed:
            obj = server.objects.pop((namespace, name))
            server._record("DELETED", obj)

    api(on_create=operator)
    with pytest.raises(kuberay.RayJobFailed, match="deleted before it finished"):
        kuberay.run_rayjob(build(tmp_path), None, timeout_s=30, watch_s=1)


def test_wrong_token_is_refused(tmp_path, api):
    server = api()
    server.token = "another-token"
    with pytest.raises(kuberay.client.ApiException) as raised:
        kuberay.run_rayjob(build(tmp_path), None, timeout_s=5)
    assert raised.value.status == 401


def test_cancelled_step_deletes_its_rayjob(tmp_path, api):
    """KFP cancels a step by sending its pod SIGTERM: the launcher deletes the RayJob and exits 143."""
    server = api(on_create=EntrypointOperator(run_entrypoint=False))
    body = tmp_path / "job.json"
    body.write_text(json.dumps(build(tmp_path)))
    code = textwrap.dedent(
        f"""
        import json, logging
        from rsc.cluster.kuberay import run_rayjob
        logging.basicConfig(level=logging.INFO)
        run_rayjob(json.load(open({str(body)!r})), None, timeout_s=120, watch_s=30)
        """
    )
    step = subprocess.Popen(
        [sys.executable, "-c", code], env=os.environ.copy(), stderr=subprocess.PIPE, text=True
    )
    try:
        server.wait_for(
            lambda: any(
                obj.get("status", {}).get("jobStatus") == "RUNNING" for obj in server.objects.values()
            )
        )
        server.wait_for(lambda: any("watch=True" in p for _, p in server.requests))
        step.send_signal(signal.SIGTERM)
        _, stderr = step.communicate(timeout=30)
    finally:
        if step.poll() is None:
            step.kill()
    assert step.returncode == 143, stderr
    assert server.methods()[-1] == "DELETE", server.requests
    assert not server.objects
    assert "deleted" in stderr


def test_deploy_on_a_cluster_checks_the_rayservice_endpoint(tmp_path):
    """With kuberay the chart's RayService serves the alias: the deploy step reports what it answers."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    class Endpoint(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):  # a fresh install: the app is up, no version has the alias yet
            body = json.dumps({"status": "waiting for a model", "model_version": None}).encode()
            self.send_response(200 if self.path == "/healthz" else 503)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        cfg = kuberay_settings(
            tmp_path,
            "serve.managed_by=rayservice",
            "serve.host=127.0.0.1",
            f"serve.port={server.server_address[1]}",
        )
        result = launch_stage("deploy", cfg, {"model_name": "rsc-policy", "version": "3"})
    finally:
        server.shutdown()
        server.server_close()
    assert result == {
        "url": f"http://127.0.0.1:{server.server_address[1]}",
        "model_name": "rsc-policy",
        "model_version": None,
        "registered_version": 3,
        "note": "no champion yet: rsc-policy answers 503 until a version is promoted",
    }
