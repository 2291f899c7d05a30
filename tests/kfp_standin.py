"""A stand-in Kubeflow Pipelines API server for the real ``kfp.Client``.

A real HTTP server on 127.0.0.1 speaking the part of the KFP v2beta1 REST API that the client's
``create_run_from_pipeline_package`` and ``create_recurring_run`` use (healthz, experiments, runs,
recurring runs). It is not a Kubeflow Pipelines server: it stores what it is sent and runs nothing.
"""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


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
