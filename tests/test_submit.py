"""``rsc submit`` through the real ``kfp.Client`` against a stand-in Kubeflow Pipelines server.

The stand-in is a real HTTP server on 127.0.0.1 speaking the part of the KFP v2beta1 REST API that
``Client.create_run_from_pipeline_package`` uses (healthz, experiments, runs). It is not a
Kubeflow Pipelines server: it stores what it is sent and runs nothing.
"""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

from rsc.cli.main import main


class StandInKfp:
    def __init__(self):
        self.experiments: list[dict] = []
        self.runs: list[dict] = []
        self.recurring_runs: list[dict] = []
        self.authorizations: list[str | None] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> StandInKfp:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        kfp = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                kfp.authorizations.append(self.headers.get("Authorization"))
                url = urlparse(self.path)
                if url.path == "/apis/v2beta1/healthz":
                    self._send(200, {"multi_user": False})
                elif url.path == "/apis/v2beta1/experiments":
                    predicates = json.loads(parse_qs(url.query).get("filter", ['{"predicates": []}'])[0])
                    names = {p["stringValue"] for p in predicates["predicates"] if p["key"] == "display_name"}
                    found = [e for e in kfp.experiments if not names or e["display_name"] in names]
                    self._send(200, {"experiments": found, "total_size": len(found)} if found else {})
                else:
                    self._send(404, {"error": f"not found: {url.path}", "code": 5})

            def do_POST(self) -> None:
                kfp.authorizations.append(self.headers.get("Authorization"))
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                path = urlparse(self.path).path
                if path == "/apis/v2beta1/experiments":
                    experiment = {**body, "experiment_id": str(uuid.uuid4())}
                    kfp.experiments.append(experiment)
                    self._send(200, experiment)
                elif path == "/apis/v2beta1/recurringruns":
                    recurring = {**body, "recurring_run_id": str(uuid.uuid4()), "status": "ENABLED"}
                    kfp.recurring_runs.append(recurring)
                    self._send(200, recurring)
                elif path == "/apis/v2beta1/runs":
                    run = {**body, "run_id": str(uuid.uuid4()), "state": "PENDING"}
                    kfp.runs.append(run)
                    self._send(200, run)
                else:
                    self._send(404, {"error": f"not found: {path}", "code": 5})

        return Handler


@pytest.fixture
def kfp_server(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.config/kfp/context.json from the developer
    monkeypatch.delenv("KF_PIPELINES_OVERRIDE_EXPERIMENT_NAME", raising=False)
    with StandInKfp() as server:
        yield server


def test_submit_starts_a_run_with_settings_and_parameters(kfp_server, monkeypatch, capsys):
    monkeypatch.setenv("KFP_TOKEN", "token-from-env")
    code = main(
        ["submit", "--host", kfp_server.url, "--experiment", "gpu-sweeps", "gpus=2", "symbols=SPX,GOOG",
         "cluster.cpu_workers=3", "--service-account", "rsc-pipeline"]
    )  # fmt: skip
    assert code == 0
    (run,) = kfp_server.runs
    url = capsys.readouterr().out.strip().splitlines()[-1]
    assert url == f"{kfp_server.url}/#/runs/details/{run['run_id']}"
    (experiment,) = kfp_server.experiments
    assert experiment["display_name"] == "gpu-sweeps" and run["experiment_id"] == experiment["experiment_id"]
    parameters = run["runtime_config"]["parameters"]
    assert parameters["gpus"] == 2 and parameters["symbols"] == "SPX,GOOG"
    settings = json.loads(parameters["settings_json"])
    assert settings["cluster"]["launcher"] == "kuberay"  # configs/cluster.yaml is the default overlay
    assert settings["cluster"]["cpu_workers"] == 3
    spec = run["pipeline_spec"]
    assert sorted(spec) == ["pipeline_spec", "platform_spec"]  # the kubernetes platform config travels too
    assert spec["pipeline_spec"]["pipelineInfo"]["name"] == "rsc-train-evaluate-serve"
    assert run["service_account"] == "rsc-pipeline"
    assert set(kfp_server.authorizations) == {"Bearer token-from-env"}


def test_submit_image_runs_every_step_and_rayjob_in_it(kfp_server, monkeypatch):
    monkeypatch.setenv("KFP_TOKEN", "t")
    image = "registry.example.com/team/rsc:0.1.0-ray2.60.0-rc1"
    assert main(["submit", "--host", kfp_server.url, "--image", image]) == 0
    (run,) = kfp_server.runs
    parameters = run["runtime_config"]["parameters"]
    assert parameters["image"] == image
    assert json.loads(parameters["settings_json"])["cluster"]["image"] == image


def test_second_submit_reuses_the_experiment(kfp_server, monkeypatch, capsys):
    monkeypatch.setenv("KFP_TOKEN", "t")
    for _ in range(2):
        assert main(["submit", "--host", kfp_server.url, "--experiment", "nightly"]) == 0
    assert len(kfp_server.experiments) == 1 and len(kfp_server.runs) == 2
    assert kfp_server.runs[0]["experiment_id"] == kfp_server.runs[1]["experiment_id"]


def test_token_comes_from_kube_config_without_env(kfp_server, monkeypatch, tmp_path):
    monkeypatch.delenv("KFP_TOKEN", raising=False)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "token-from-kubeconfig"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    assert main(["submit", "--host", kfp_server.url, "--run-name", "from-laptop"]) == 0
    assert set(kfp_server.authorizations) == {"Bearer token-from-kubeconfig"}
    assert kfp_server.runs[0]["display_name"] == "from-laptop"


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("gpus=two", "gpus='two': not a int"),
        ("gpu=1", "neither a settings key"),
        ("cluster.gpus=-1", "cluster.gpus"),
    ],
)
def test_bad_arguments_are_one_clear_error(kfp_server, monkeypatch, capsys, argument, message):
    monkeypatch.setenv("KFP_TOKEN", "t")
    assert main(["submit", "--host", kfp_server.url, argument]) == 2
    assert message in capsys.readouterr().err
    assert kfp_server.runs == []


def test_schedule_creates_a_recurring_run_that_ingests_afresh(kfp_server, monkeypatch, capsys):
    monkeypatch.setenv("KFP_TOKEN", "t")
    code = main(["submit", "--host", kfp_server.url, "--schedule", "0 22 * * 1-5", "--experiment", "nightly"])
    assert code == 0 and kfp_server.runs == []
    (recurring,) = kfp_server.recurring_runs
    url = capsys.readouterr().out.strip().splitlines()[-1]
    assert url == f"{kfp_server.url}/#/recurringrun/details/{recurring['recurring_run_id']}"
    assert recurring["trigger"]["cron_schedule"]["cron"] == "0 0 22 * * 1-5"  # KFP's seconds-first cron
    assert recurring["mode"] == "ENABLE" and recurring["no_catchup"] is True
    assert int(recurring["max_concurrency"]) == 1
    (experiment,) = kfp_server.experiments
    assert (
        recurring["experiment_id"] == experiment["experiment_id"] and experiment["display_name"] == "nightly"
    )
    assert "settings_json" in recurring["runtime_config"]["parameters"]
    tasks = recurring["pipeline_spec"]["pipeline_spec"]["root"]["dag"]["tasks"].values()
    caching = [task.get("cachingOptions", {}).get("enableCache", False) for task in tasks]
    assert caching and not any(caching)  # every scheduled run ingests the data anew


def test_a_bad_cron_is_one_clear_error(kfp_server, monkeypatch, capsys):
    monkeypatch.setenv("KFP_TOKEN", "t")
    assert main(["submit", "--host", kfp_server.url, "--schedule", "every night"]) == 2
    assert "expected a cron expression of 5 fields" in capsys.readouterr().err
    assert kfp_server.recurring_runs == []
