"""A stand-in for the Kubernetes API server, for ``rayjobs.ray.io`` only. NOT a cluster.

There is no API server on this machine, so the launcher is tested against this real HTTP server on
127.0.0.1 that speaks the few calls it makes (create, get, watch with a field selector, delete) the
way the API server does: bearer-token auth, Status bodies for errors, resourceVersions, streamed
watch events, 410 Gone for a compacted history, 403 for a plain list (the pipeline's Role grants no
list). Created RayJobs are checked against the KubeRay CRD, as the API server would. A test plays
the KubeRay operator by calling :meth:`StandInApiServer.set_status`, or with :class:`EntrypointOperator`,
which runs the RayJob's entrypoint here and reports its exit like KubeRay does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import yaml

PREFIX = "/apis/ray.io/v1/namespaces/"


def status_body(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


class StandInApiServer:
    """In-memory RayJobs behind a real HTTP server; see the module docstring for what it is not."""

    def __init__(
        self,
        token: str = "stand-in-token",
        validate: Callable[[dict], list[str]] | None = None,
        on_create: Callable[[StandInApiServer, dict], None] | None = None,
    ):
        self.token = token
        self.validate = validate
        self.on_create = on_create
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.events: list[tuple[int, str, dict[str, Any]]] = []  # (resourceVersion, type, object)
        self.requests: list[tuple[str, str]] = []  # (method, path?query)
        self.created: list[dict[str, Any]] = []
        self.closed = False
        self.compacted_below = 0  # watches from an older resourceVersion get 410 Gone
        self.version = 100
        self.changed = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> StandInApiServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self.changed:
            self.closed = True
            self.changed.notify_all()
        self._server.shutdown()
        self._server.server_close()

    # --- what the operator (the test) does -------------------------------------------------------
    def _record(self, kind: str, obj: dict[str, Any]) -> None:
        with self.changed:
            self.version += 1
            obj["metadata"]["resourceVersion"] = str(self.version)
            self.events.append((self.version, kind, json.loads(json.dumps(obj))))
            self.changed.notify_all()

    def set_status(self, namespace: str, name: str, **status: Any) -> None:
        """Merge ``status`` into the RayJob's status, as KubeRay's status updates do."""
        with self.changed:
            obj = self.objects[(namespace, name)]
            obj["status"] = {**obj.get("status", {}), **status}
            self._record("MODIFIED", obj)

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        with self.changed:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("the stand-in API server did not see the expected calls")
                self.changed.wait(remaining)

    def methods(self) -> list[str]:
        return [method for method, _ in self.requests]

    # --- HTTP ------------------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet test output
                pass

            def _send(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self, method: str) -> tuple[str, str | None, dict[str, list[str]]] | None:
                with server.changed:
                    server.requests.append((method, self.path))
                    server.changed.notify_all()
                if self.headers.get("Authorization") != f"Bearer {server.token}":
                    self._send(401, status_body(401, "Unauthorized", "Unauthorized"))
                    return None
                url = urlparse(self.path)
                parts = url.path.removeprefix(PREFIX).split("/") if url.path.startswith(PREFIX) else []
                if len(parts) not in (2, 3) or parts[1] != "rayjobs":
                    self._send(404, status_body(404, "NotFound", f"the server could not find {url.path}"))
                    return None
                return parts[0], parts[2] if len(parts) == 3 else None, parse_qs(url.query)

            def do_POST(self) -> None:
                route = self._route("POST")
                if route is None:
                    return
                namespace, _, _ = route
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                name = body.get("metadata", {}).get("name", "")
                errors = server.validate(body) if server.validate else []
                if errors:
                    message = f'RayJob.ray.io "{name}" is invalid: ' + "; ".join(errors)
                    self._send(422, status_body(422, "Invalid", message))
                    return
                with server.changed:
                    if (namespace, name) in server.objects:
                        self._send(
                            409, status_body(409, "AlreadyExists", f'rayjobs.ray.io "{name}" already exists')
                        )
                        return
                    body["metadata"].update(
                        namespace=namespace,
                        uid=str(uuid.uuid4()),
                        generation=1,
                        creationTimestamp=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    )
                    server.objects[(namespace, name)] = body
                    server.created.append(json.loads(json.dumps(body)))
                    server._record("ADDED", body)
                    reply = json.loads(json.dumps(body))
                self._send(201, reply)
                if server.on_create:
                    threading.Thread(target=server.on_create, args=(server, reply), daemon=True).start()

            def do_GET(self) -> None:
                route = self._route("GET")
                if route is None:
                    return
                namespace, name, query = route
                if name is None:
                    if query.get("watch", [""])[0].lower() not in ("true", "1"):  # Go ParseBool
                        self._send(
                            403, status_body(403, "Forbidden", "rayjobs.ray.io is forbidden: cannot list")
                        )
                        return
                    self._watch(namespace, query)
                    return
                with server.changed:
                    obj = server.objects.get((namespace, name))
                    reply = json.loads(json.dumps(obj)) if obj else None
                if reply is None:
                    self._send(404, status_body(404, "NotFound", f'rayjobs.ray.io "{name}" not found'))
                else:
                    self._send(200, reply)

            def _watch(self, namespace: str, query: dict[str, list[str]]) -> None:
                selector = query.get("fieldSelector", [""])[0]
                name = (
                    selector.removeprefix("metadata.name=") if selector.startswith("metadata.name=") else None
                )
                since = int(query.get("resourceVersion", ["0"])[0] or 0)
                deadline = time.monotonic() + float(query.get("timeoutSeconds", ["30"])[0])
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Connection", "close")
                self.end_headers()
                if since < server.compacted_below:
                    gone = status_body(410, "Expired", f"too old resource version: {since}")
                    self._line({"type": "ERROR", "object": gone})
                    return
                while True:
                    with server.changed:
                        pending = [
                            (rv, kind, obj)
                            for rv, kind, obj in server.events
                            if rv > since
                            and obj["metadata"]["namespace"] == namespace
                            and (name is None or obj["metadata"]["name"] == name)
                        ]
                        if not pending:
                            remaining = deadline - time.monotonic()
                            if remaining <= 0 or server.closed:
                                return
                            server.changed.wait(min(remaining, 0.2))
                            continue
                    for rv, kind, obj in pending:
                        since = rv
                        if not self._line({"type": kind, "object": obj}):
                            return

            def _line(self, event: dict[str, Any]) -> bool:
                try:
                    self.wfile.write(json.dumps(event).encode() + b"\n")
                    self.wfile.flush()
                    return True
                except (BrokenPipeError, ConnectionResetError):
                    return False

            def do_DELETE(self) -> None:
                route = self._route("DELETE")
                if route is None:
                    return
                namespace, name, _ = route
                with server.changed:
                    obj = server.objects.pop((namespace, name or ""), None)
                    if obj is not None:
                        server._record("DELETED", obj)
                if obj is None:
                    self._send(404, status_body(404, "NotFound", f'rayjobs.ray.io "{name}" not found'))
                else:
                    self._send(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})

        return Handler


def write_kubeconfig(path: Path, server: StandInApiServer, namespace: str) -> Path:
    """A kube config whose current context points at the stand-in with its token and a namespace."""
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "stand-in", "cluster": {"server": server.url}}],
                "users": [{"name": "pipeline-step", "user": {"token": server.token}}],
                "contexts": [
                    {
                        "name": "stand-in",
                        "context": {"cluster": "stand-in", "user": "pipeline-step", "namespace": namespace},
                    }
                ],
                "current-context": "stand-in",
            }
        )
    )
    return path


class EntrypointOperator:
    """Plays KubeRay for each created RayJob: Initializing, Running, then runs ``spec.entrypoint`` here
    (bash, the runtime env's variables, this interpreter's ``python``) and reports Complete/SUCCEEDED
    or Failed/FAILED with the exit code, as KubeRay's status does. No pods, no Ray cluster."""

    def __init__(self, run_entrypoint: bool = True, fail_message: str | None = None):
        self.run_entrypoint = run_entrypoint
        self.fail_message = fail_message
        self.outputs: list[str] = []

    def __call__(self, server: StandInApiServer, job: dict[str, Any]) -> None:
        namespace, name = job["metadata"]["namespace"], job["metadata"]["name"]
        server.set_status(namespace, name, jobDeploymentStatus="Initializing")
        server.set_status(
            namespace,
            name,
            jobDeploymentStatus="Running",
            jobStatus="RUNNING",
            dashboardURL=f"{name}-head-svc.{namespace}.svc.cluster.local:8265",
        )
        if self.fail_message is not None:
            server.set_status(
                namespace,
                name,
                jobDeploymentStatus="Failed",
                jobStatus="FAILED",
                reason="AppFailed",
                message=self.fail_message,
            )
            return
        if not self.run_entrypoint:
            return
        env_vars = yaml.safe_load(job["spec"].get("runtimeEnvYAML") or "{}").get("env_vars", {})
        env = {**os.environ, **env_vars, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        done = subprocess.run(
            ["bash", "-c", job["spec"]["entrypoint"]], env=env, capture_output=True, text=True, timeout=300
        )
        self.outputs.append(done.stdout + done.stderr)
        if done.returncode == 0:
            server.set_status(namespace, name, jobDeploymentStatus="Complete", jobStatus="SUCCEEDED")
        else:
            server.set_status(
                namespace,
                name,
                jobDeploymentStatus="Failed",
                jobStatus="FAILED",
                reason="AppFailed",
                message=f"Job entrypoint command failed with exit code {done.returncode}",
            )
