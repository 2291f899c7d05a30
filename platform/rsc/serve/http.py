"""ASGI pieces of the policy app: body size limit, request metrics, and 422 bodies without echoed input."""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.routing import get_route_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rsc.monitor import Metric, MetricsSink, names
from rsc.serve.inference import InvalidInput

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
VERSION_HEADER = "x-model-version"  # set by the answering routes: the version that decided
VERSION_HEADER_BYTES = VERSION_HEADER.encode()


async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    response = JSONResponse(status_code=413, content={"detail": f"request body over {limit} bytes"})
    await response(scope, receive, send)


class BodyLimit:
    """413 for a body over ``max_bytes``: by its Content-Length, or, when chunked, as it arrives."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if declared.isdigit() and int(declared) > self.max_bytes:
                return await _too_large(scope, receive, send, self.max_bytes)
            return await self.app(scope, receive, send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                return await _too_large(scope, receive, send, self.max_bytes)
            if not message.get("more_body", False):
                break
        pending = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay() -> Message:
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)


class RequestMetrics:
    """Count, latency and 5xx of every request, tagged by route template, status class and version.

    The version is the one the response names in ``x-model-version`` (the version that answered, even
    across an alias switch), else the one served when the request arrived.

    ``endpoints`` are the app's route paths: a request rejected before routing (413) is tagged with its
    path when that is one of them; any other path is ``unmatched``, so the tag stays a bounded set.
    """

    def __init__(
        self, app: ASGIApp, sink: MetricsSink, version: Callable[[], int], endpoints: frozenset[str]
    ):
        self.app, self.sink, self.version, self.endpoints = app, sink, version, endpoints

    def _endpoint(self, scope: Scope) -> str:
        route = getattr(scope.get("route"), "path", None)
        if route is not None:
            return route
        path = get_route_path(scope)
        return path if path in self.endpoints else "unmatched"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, version, status = time.perf_counter(), self.version(), 500

        async def send_status(message: Message) -> None:
            nonlocal status, version
            if message["type"] == "http.response.start":
                status = message["status"]
                for key, value in message.get("headers", ()):
                    if key == VERSION_HEADER_BYTES:
                        version = int(value)
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            tags = {
                "endpoint": self._endpoint(scope),
                "status_class": f"{status // 100}xx",
                "model_version": str(version),
            }
            self.sink.send(Metric(names.SERVE_REQUESTS, 1, "count", tags))
            self.sink.send(
                Metric(names.SERVE_LATENCY, (time.perf_counter() - started) * 1e3, "histogram", tags)
            )
            if status >= 500:
                self.sink.send(Metric(names.SERVE_ERRORS, 1, "count", tags))


async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
    """422 naming each bad field; the offending input is left out (it may hold NaN, not valid JSON)."""
    detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in error.errors()]
    return JSONResponse(status_code=422, content={"detail": detail})


async def invalid_input(request: Request, error: InvalidInput) -> JSONResponse:
    return JSONResponse(status_code=422, content={"detail": [error.detail()]})
