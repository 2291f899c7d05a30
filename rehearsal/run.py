"""``make rehearsal``: the cluster overlay end to end, every process in its cluster role, on one machine.

Containers of the project image play the Ray head (``--num-cpus=0``) and a worker node, the MLflow
server (started with exactly the command the chart renders), every pipeline step (kfp.local's
DockerRunner against podman, rehearsal.pipeline_run) and the paper trader; the Serve application is
deployed from the chart's RayService ``serveConfigV2`` through the head's REST API, as KubeRay does.
Stand-ins run on the host: moto's S3 server for MinIO and a UDP listener for the Datadog agent. All on
the host network, the cluster's service names mapped to 127.0.0.1, so nothing goes to another address.

It checks what a first install would show: the DAG (two runs started at once) and a paper replay
succeed; data, checkpoints, Tune state and MLflow artifacts are in the bucket, MLflow's through the
server's proxy; ``/v1/act`` answers from the registered champion (and 503 before there is one); Serve
and paper metrics reach the listener with the cluster's tags; each run keeps its own run root and MLflow
run. Everything it started is stopped at the end, on failure and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from pathlib import Path

import requests

from rehearsal import chart
from rehearsal.image import tag
from rehearsal.pipeline_run import LABEL
from rehearsal.podman import PROJECT, environment, image_exists, podman

BUCKET = "rsc-artifacts"  # configs/cluster.yaml: storage.root
STORAGE_SECRET, RAY_TOKEN_SECRET = "rsc-storage", "rsc-ray-token"
STORE_KEYS = {"AWS_ACCESS_KEY_ID": "rehearsal", "AWS_SECRET_ACCESS_KEY": "rehearsal-secret"}
SETTINGS_FILES = ("configs/base.yaml", "configs/cluster.yaml", "configs/rehearsal.yaml")
PREFIX = "rsc-rehearsal"


def free_port(preferred: int | None = None) -> int:
    """``preferred`` when nothing listens there (the cluster's own port), else any free port."""
    for port in ([preferred] if preferred else []) + [0]:
        with closing(socket.socket()) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError("no free port")


@dataclass
class Ports:
    s3: int = field(default_factory=free_port)
    mlflow: int = field(default_factory=lambda: free_port(5000))
    gcs: int = field(default_factory=lambda: free_port(6379))
    dashboard: int = field(default_factory=lambda: free_port(8265))
    serve: int = field(default_factory=lambda: free_port(8000))
    statsd: int = field(default_factory=lambda: free_port(8125))


HOSTS = {  # cluster service names -> loopback (podman --add-host, DockerRunner extra_hosts)
    "minio": "127.0.0.1",
    "rsc-mlflow": "127.0.0.1",
    "rsc-head-svc": "127.0.0.1",
    "rsc-serve-svc": "127.0.0.1",
    "datadog-agent.datadog.svc.cluster.local": "127.0.0.1",
}


class StatsdListener:
    """The Datadog agent's stand-in: DogStatsD lines received on 127.0.0.1."""

    def __init__(self, port: int):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.sock.settimeout(0.2)
        self.lines: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                self.lines += self.sock.recv(65535).decode(errors="replace").splitlines()
            except TimeoutError:
                continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


class Rehearsal:
    """The cluster's parts, started in order and stopped in reverse."""

    def __init__(self, image: str, work: Path, stack: ExitStack):
        self.image, self.work, self.stack = image, work, stack
        self.ports = Ports()
        self.token = secrets.token_hex(32)
        self.s3_endpoint = f"http://minio:{self.ports.s3}"
        self.secrets = {
            STORAGE_SECRET: {**STORE_KEYS, "AWS_ENDPOINT_URL": self.s3_endpoint},
            RAY_TOKEN_SECRET: {"auth_token": self.token},
        }
        self.logs = work / "logs"
        self.logs.mkdir(parents=True)
        self.local_before = set(local_run_files())

    # -- helpers -------------------------------------------------------------------------------
    def say(self, text: str) -> None:
        print(f"[rehearsal] {text}", flush=True)

    def container(
        self, name: str, *args: str, entrypoint: str | None = None, env: dict | None = None
    ) -> None:
        """``podman run -d`` on the host network with the service names, removed when the stack closes."""
        hosts = [f"--add-host={host}:{ip}" for host, ip in HOSTS.items()]
        variables = [f"--env={key}={value}" for key, value in (env or {}).items()]
        full = f"{PREFIX}-{name}"
        podman("rm", "-f", full, check=False, capture=True)
        podman(
            "run", "-d", "--name", full, "--network=host", "--init", "--shm-size=1g", *hosts, *variables,
            *([f"--entrypoint={entrypoint}"] if entrypoint else []), self.image, *args, capture=True,
        )  # fmt: skip
        self.stack.callback(self._stop_container, full)

    def _stop_container(self, name: str) -> None:
        log = podman("logs", name, check=False, capture=True)
        (self.logs / f"{name}.log").write_text(log.stdout + log.stderr)
        podman("rm", "-f", "-t", "5", name, check=False, capture=True)

    def wait(self, what: str, check, timeout_s: float = 180.0, container: str | None = None) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if check():
                    return
            except (requests.RequestException, OSError):
                pass
            if (
                container
                and "running"
                not in podman(
                    "inspect",
                    "--format",
                    "{{.State.Status}}",
                    f"{PREFIX}-{container}",
                    check=False,
                    capture=True,
                ).stdout
            ):
                break
            time.sleep(1)
        detail = ""
        if container:
            log = podman("logs", "--tail", "30", f"{PREFIX}-{container}", check=False, capture=True)
            detail = f"\n--- {container} ---\n{log.stdout}{log.stderr}"
        raise RuntimeError(f"{what} did not come up within {timeout_s:.0f}s{detail}")

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    # -- the parts -----------------------------------------------------------------------------
    def start_s3(self) -> None:
        import boto3
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per S3 request otherwise
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.ports.s3)
        server.start()
        self.stack.callback(server.stop)
        self.s3 = boto3.client(
            "s3", endpoint_url=f"http://127.0.0.1:{self.ports.s3}", region_name="us-east-1",
            aws_access_key_id=STORE_KEYS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=STORE_KEYS["AWS_SECRET_ACCESS_KEY"],
        )  # fmt: skip
        self.s3.create_bucket(Bucket=BUCKET)
        self.say(f"S3 (moto, standing for MinIO) at {self.s3_endpoint} -> 127.0.0.1:{self.ports.s3}")

    def start_statsd(self) -> None:
        self.statsd = StatsdListener(self.ports.statsd)
        self.stack.callback(self.statsd.close)
        self.say(f"DogStatsD listener (standing for the agent) on 127.0.0.1:{self.ports.statsd}")

    def render(self) -> list[dict]:
        from rsc.config import load_settings

        lineage = load_settings([PROJECT / f for f in SETTINGS_FILES], self.settings_overrides()).model_name
        return chart.render(
            "--set", f"serve.modelName={lineage}",
            "--set", f"mlflow.port={self.ports.mlflow}",
            "--set", f"mlflow.artifactRoot=s3://{BUCKET}/mlflow",
            "--set", f"storage.s3EndpointUrl={self.s3_endpoint}",
            "--set", f"serve.trackingUri=http://rsc-mlflow:{self.ports.mlflow}",
            "--set", f"datadog.statsdPort={self.ports.statsd}",
        )  # fmt: skip

    def start_mlflow(self, documents: list[dict]) -> None:
        command, env = chart.mlflow_server(documents, self.secrets[STORAGE_SECRET])
        # The pod's emptyDir at /mlflow (SQLite) is the container's scratch here.
        self.container_with_tmpfs("mlflow", command, env)
        url = f"http://127.0.0.1:{self.ports.mlflow}"
        self.wait("MLflow", lambda: requests.get(f"{url}/health", timeout=2).ok, container="mlflow")
        self.say(f"MLflow server from the chart's command: {' '.join(command)}")

    def container_with_tmpfs(self, name: str, command: list[str], env: dict[str, str]) -> None:
        hosts = [f"--add-host={host}:{ip}" for host, ip in HOSTS.items()]
        variables = [f"--env={key}={value}" for key, value in env.items()]
        full = f"{PREFIX}-{name}"
        podman("rm", "-f", full, check=False, capture=True)
        podman(
            "run", "-d", "--name", full, "--network=host", "--init", *hosts, *variables,
            "--tmpfs=/mlflow:rw,mode=1777", f"--entrypoint={command[0]}", self.image, *command[1:],
            capture=True,
        )  # fmt: skip
        self.stack.callback(self._stop_container, full)

    def ray_env(self, documents: list[dict]) -> dict[str, str]:
        """A Ray pod's environment as the chart and KubeRay give it: literal env, the storage Secret,
        and the token (KubeRay sets RAY_AUTH_TOKEN from authOptions' Secret)."""
        service = next(d for d in documents if d["kind"] == "RayService")
        head = service["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]
        return {**self.secrets[STORAGE_SECRET], **chart.literal_env(head), "RAY_AUTH_TOKEN": self.token}

    def start_ray(self, env: dict[str, str]) -> None:
        p = self.ports
        self.container(
            "ray-head", "start", "--head", "--block", "--num-cpus=0", "--disable-usage-stats",
            "--node-ip-address=127.0.0.1", f"--port={p.gcs}", "--dashboard-host=127.0.0.1",
            f"--dashboard-port={p.dashboard}", f"--ray-client-server-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}", f"--metrics-export-port={free_port()}",
            entrypoint="ray", env=env,
        )  # fmt: skip
        dashboard = f"http://127.0.0.1:{p.dashboard}"
        version = f"{dashboard}/api/version"
        self.wait(
            "the Ray head",
            lambda: requests.get(version, headers=self.auth(), timeout=2).ok,
            container="ray-head",
        )
        self.container(
            "ray-worker", "start", f"--address=127.0.0.1:{p.gcs}", "--block", "--num-cpus=2",
            "--disable-usage-stats", "--node-ip-address=127.0.0.1",
            f"--dashboard-agent-listen-port={free_port()}", f"--metrics-export-port={free_port()}",
            entrypoint="ray", env=env,
        )  # fmt: skip
        self.wait("the Ray worker node", lambda: self._alive_nodes() >= 2, container="ray-worker")
        refused = requests.get(f"{dashboard}/api/jobs/", timeout=5).status_code
        self.say(f"Ray head (0 CPUs) + worker node up; the Jobs API without the token answers {refused}")
        if refused not in (401, 403):
            raise RuntimeError(f"the Ray dashboard answered {refused} without a token: token auth is off")

    def _alive_nodes(self) -> int:
        url = f"http://127.0.0.1:{self.ports.dashboard}/nodes?view=summary"
        summary = requests.get(url, headers=self.auth(), timeout=5).json()["data"]["summary"]
        return sum(1 for node in summary if node.get("raylet", {}).get("state") == "ALIVE")

    def deploy_serve(self, documents: list[dict]) -> None:
        """The RayService's serveConfigV2, submitted as KubeRay submits it. One network namespace holds
        both nodes here, so the HTTP proxy runs on the head only (on a cluster: every node)."""
        config = chart.serve_config(documents)
        config["http_options"] = {"host": "127.0.0.1", "port": self.ports.serve}
        config["proxy_location"] = "HeadOnly"
        url = f"http://127.0.0.1:{self.ports.dashboard}/api/serve/applications/"
        response = requests.put(url, json=config, headers=self.auth(), timeout=30)
        response.raise_for_status()
        endpoint = f"http://127.0.0.1:{self.ports.serve}"
        self.wait("the Serve app", lambda: requests.get(f"{endpoint}/healthz", timeout=2).ok, timeout_s=240)
        fresh = requests.post(f"{endpoint}/v1/act", json={"features": [[0.0]]}, timeout=10)
        self.say(f"Serve app from serveConfigV2 up; before any champion /v1/act answers {fresh.status_code}")
        if fresh.status_code != 503:
            raise RuntimeError(f"before any champion /v1/act answered {fresh.status_code}: {fresh.text}")

    def settings_overrides(self) -> list[str]:
        p = self.ports
        return [
            f"registry.tracking_uri=http://rsc-mlflow:{p.mlflow}",
            f"cluster.jobs_address=http://rsc-head-svc:{p.dashboard}",
            f"serve.port={p.serve}",
            f"monitor.statsd_port={p.statsd}",
            "monitor.statsd_host=datadog-agent.datadog.svc.cluster.local",
        ]

    def settings_json(self, *extra: str) -> str:
        from rsc.config import load_settings

        cfg = load_settings([PROJECT / f for f in SETTINGS_FILES], [*self.settings_overrides(), *extra])
        return cfg.model_dump_json()

    def start_pipeline(self, name: str, package: Path, arguments: dict) -> subprocess.Popen:
        root = self.work / "kfp" / name
        root.mkdir(parents=True)
        root.chmod(0o777)  # steps run as the image's non-root user
        spec = {
            "package": str(package),
            "pipeline_root": str(root),
            "log_dir": str(self.logs / name),
            "arguments": {**arguments, "image": self.image},
            "secrets": self.secrets,
            "hosts": HOSTS,
            "label": self.work.name,
        }
        path = self.work / f"{name}.json"
        path.write_text(json.dumps(spec))
        log = open(self.logs / f"{name}.pipeline.log", "w")  # noqa: SIM115 - kept open by the child
        self.stack.callback(log.close)
        process = subprocess.Popen(
            [sys.executable, "-m", "rehearsal.pipeline_run", str(path)],
            cwd=PROJECT, env={**environment(), "DOCKER_HOST": self.docker_host}, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.stack.callback(lambda: process.poll() is None and os.killpg(process.pid, signal.SIGTERM))
        return process

    def remove_step_containers(self) -> None:
        """Step containers still running (an interrupted or failed run) go with the rehearsal."""
        listed = podman("ps", "-aq", "--filter", f"label={LABEL}={self.work.name}", check=False, capture=True)
        for container in listed.stdout.split():
            podman("rm", "-f", "-t", "5", container, check=False, capture=True)

    def start_docker_api(self) -> None:
        self.stack.callback(self.remove_step_containers)
        socket_path = self.work / "podman.sock"
        process = subprocess.Popen(
            ["podman", "system", "service", "--time=0", f"unix://{socket_path}"], env=environment(),
            stdout=subprocess.DEVNULL, stderr=(self.logs / "podman-service.log").open("w"),
        )  # fmt: skip
        self.stack.callback(process.terminate)
        self.docker_host = f"unix://{socket_path}"
        self.wait("podman's Docker API", socket_path.exists, timeout_s=30)

    def paper_replay(self) -> subprocess.CompletedProcess:
        files = [f"/home/ray/rsc/{f}" for f in SETTINGS_FILES]
        hosts = [f"--add-host={host}:{ip}" for host, ip in HOSTS.items()]
        env = [f"--env={k}={v}" for k, v in self.secrets[STORAGE_SECRET].items()]
        return podman(
            "run", "--rm", "--network=host", "--init", *hosts, *env, self.image, "paper", "start", *files,
            *self.settings_overrides(), "paper.feed=replay", check=False, capture=True, timeout=600,
        )  # fmt: skip


def wait_all(rehearsal: Rehearsal, runs: dict[str, subprocess.Popen], timeout_s: float) -> dict[str, str]:
    """Each run's last output line (the deploy step's result); a failed run raises with its log."""
    deadline = time.monotonic() + timeout_s
    outputs = {}
    for name, process in runs.items():
        try:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"pipeline run {name} did not finish within {timeout_s:.0f}s") from None
        text = (rehearsal.logs / f"{name}.pipeline.log").read_text()
        if process.returncode != 0:
            failed = [line for line in text.splitlines() if line.startswith("FAILED:")]
            tail = text[text.index("FAILED:") :] if failed else text[-4000:]
            raise RuntimeError(f"pipeline run {name} failed:\n{tail}")
        outputs[name] = text.strip().splitlines()[-1]
        rehearsal.say(f"pipeline run {name} succeeded: {outputs[name]}")
    return outputs


def local_run_files() -> list[Path]:
    """Where a run would leave files on this machine's disk if it bypassed the object store."""
    return [*Path.home().glob("ray_results/*"), *(PROJECT / "artifacts").glob("cluster*")]


def check(rehearsal: Rehearsal, outputs: dict[str, str]) -> None:
    """The assertions of a first install, on what the runs left behind."""
    import mlflow
    from mlflow.tracking import MlflowClient

    problems: list[str] = []
    keys = [o["Key"] for page in rehearsal.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
            for o in page.get("Contents", [])]  # fmt: skip
    run_ids = sorted({key.split("/")[1] for key in keys if key.startswith("cluster/") and key.count("/") > 2})
    if len(run_ids) != len(outputs):
        problems.append(f"expected {len(outputs)} run roots under s3://{BUCKET}/cluster/, found {run_ids}")
    for run_id in run_ids:
        root = f"cluster/{run_id}/"
        wanted = {
            "bars": f"{root}bars/manifest.json",
            "checkpoint": f"{root}model/checkpoint/",
            "Tune state": f"{root}tune/sweep/experiment_state",
            "evaluation": f"{root}evaluation/report.html",
        }
        for what, prefix in wanted.items():
            if not any(key.startswith(prefix) for key in keys):
                problems.append(f"run {run_id}: no {what} ({prefix}) in the bucket")
    if not any(key.startswith("mlflow/") and "/artifacts/" in key for key in keys):
        problems.append("no MLflow artifacts under s3://rsc-artifacts/mlflow/ (the server's proxy)")
    tracking = f"http://127.0.0.1:{rehearsal.ports.mlflow}"
    mlflow.set_tracking_uri(tracking)
    client = MlflowClient(tracking)
    experiment = client.get_experiment_by_name("rsc")
    if experiment is None or not experiment.artifact_location.startswith("mlflow-artifacts:"):
        problems.append(f"experiment rsc is not behind the artifact proxy: {experiment}")
    else:
        runs = client.search_runs([experiment.experiment_id], "tags.`rsc.kind` = 'train'")
        names = sorted(r.info.run_name for r in runs)
        if names != sorted(f"cluster-{run_id}" for run_id in run_ids):
            problems.append(f"MLflow train runs {names} do not match the run roots {run_ids}")
        for r in runs:
            if not r.data.tags.get("rsc.model_uri", "").endswith(
                f"{r.info.run_name.removeprefix('cluster-')}/model"
            ):
                problems.append(f"MLflow run {r.info.run_name} names another run's model")
    endpoint = f"http://127.0.0.1:{rehearsal.ports.serve}"
    model = requests.get(f"{endpoint}/v1/model", timeout=10).json()
    window = [[0.0] * len(model["feature_names"])] * model["window"]
    act = requests.post(f"{endpoint}/v1/act", json={"features": window, "position": 0.0}, timeout=30)
    champion = client.get_model_version_by_alias(model["model_name"], "champion").version
    if act.status_code != 200 or act.json()["model_version"] != int(champion):
        problems.append(f"/v1/act: {act.status_code} {act.text}, champion v{champion}")
    else:
        rehearsal.say(f"/v1/act answered {act.json()} (champion v{champion})")
    for prefix in ("rsc.serve.", "rsc.paper."):
        tagged = [
            line for line in rehearsal.statsd.lines if line.startswith(prefix) and "env:cluster" in line
        ]
        if not tagged:
            problems.append(f"no {prefix}* metric with env:cluster reached the DogStatsD listener")
    local = sorted(set(local_run_files()) - rehearsal.local_before)
    local += [p for p in (rehearsal.work / "kfp").rglob("*") if p.suffix in {".parquet", ".pt", ".db"}]
    if local:
        problems.append(f"run files on the local disk: {local[:5]}")
    if problems:
        raise RuntimeError("the rehearsal's checks failed:\n- " + "\n- ".join(problems))
    rehearsal.say(f"{len(keys)} objects in s3://{BUCKET}; {len(rehearsal.statsd.lines)} DogStatsD lines")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make rehearsal", description=__doc__.splitlines()[0])
    parser.add_argument("--image", default=tag("cpu"), help="image to rehearse (default: `make image`'s)")
    parser.add_argument("--runs", type=int, default=2, help="pipeline runs started at once")
    parser.add_argument(
        "--break-step",
        choices=["ingest"],
        help="make this step fail (bad symbols): the rehearsal must turn red",
    )
    parser.add_argument("--timeout", type=float, default=1500.0, help="seconds for the pipeline runs")
    args = parser.parse_args(argv)
    if not image_exists(args.image):
        print(f"rehearsal: image {args.image} not found: run `make image` first", file=sys.stderr)
        return 2
    started = time.monotonic()
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    work = Path(tempfile.mkdtemp(prefix="rsc-rehearsal-"))
    with ExitStack() as stack:
        rehearsal = Rehearsal(args.image, work, stack)
        try:
            rehearsal.say(f"image {args.image}; logs under {rehearsal.logs}")
            rehearsal.start_s3()
            rehearsal.start_statsd()
            documents = rehearsal.render()
            rehearsal.start_mlflow(documents)
            rehearsal.start_ray(rehearsal.ray_env(documents))
            rehearsal.deploy_serve(documents)
            rehearsal.start_docker_api()
            package = work / "pipeline.yaml"
            subprocess.run(
                [sys.executable, "-m", "rsc", "compile", "-o", str(package)], check=True, cwd=PROJECT
            )
            extra = ["data.symbols=[NOPE]"] if args.break_step == "ingest" else []
            runs = {
                f"run-{n}": rehearsal.start_pipeline(
                    f"run-{n}", package, {"settings_json": rehearsal.settings_json(*extra)}
                )
                for n in range(1, args.runs + 1)
            }
            rehearsal.say(f"{len(runs)} pipeline runs started at once (steps in containers of the image)")
            outputs = wait_all(rehearsal, runs, args.timeout)
            replay = rehearsal.paper_replay()
            (rehearsal.logs / "paper.log").write_text(replay.stdout + replay.stderr)
            if replay.returncode != 0:
                output = (replay.stdout + replay.stderr)[-3000:]
                raise RuntimeError(f"the paper replay failed ({replay.returncode}):\n{output}")
            rehearsal.say(f"paper replay: {replay.stdout.strip().splitlines()[-2:]}")
            time.sleep(2)  # the last DogStatsD packets
            check(rehearsal, outputs)
        except (RuntimeError, subprocess.CalledProcessError, requests.RequestException) as error:
            print(f"\nREHEARSAL FAILED after {time.monotonic() - started:.0f}s: {error}", file=sys.stderr)
            print(f"logs: {rehearsal.logs}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("\nrehearsal interrupted; stopping everything it started", file=sys.stderr)
            return 130
        finally:
            rehearsal.say("stopping containers and stand-ins")
    print(f"REHEARSAL PASSED in {time.monotonic() - started:.0f}s (logs: {work / 'logs'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
