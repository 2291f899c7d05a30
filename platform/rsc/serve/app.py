"""The Ray Serve deployment: a FastAPI ingress over the registered model version behind an alias.

The replicas never resolve the alias themselves: the app's ``AliasController`` (:mod:`rsc.serve.switch`)
does, and each replica long-polls it for the version to serve. On a move the replica loads the new
version beside the old one and swaps a single reference; a request reads that reference once, when it
starts, so requests in flight finish on the version they started with and no request fails during a
switch. The controller announces the switch once every running replica serves the new version
(``announced_version`` at ``/v1/model``): from then on no request gets the older one. (Redeploying
through Serve's rolling update also works, but it restarts every replica for what is a change of data.)

A replica started before any version has the alias (a fresh install) starts anyway: it is healthy,
answers the policy routes with 503 and a body that says what is missing, and serves the first version
the alias is given. (Raising in the constructor would make Serve give up on the application, and a
RayService would not recover from that without a change of its config.)

``/v1/act`` requests meet in ``@serve.batch``: the observations queued while the network is busy (and
those arriving within ``serve.batch_wait_timeout_s``, 0 by default) go through it in one call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import numpy as np
from fastapi import FastAPI, HTTPException, Response
from fastapi.exceptions import RequestValidationError
from ray import serve
from ray.serve.handle import DeploymentHandle

from rsc.config.settings import MonitorSettings, ServeSettings
from rsc.monitor import Metric, MetricsSink, NullSink, names, sink_from_settings
from rsc.registry.policy import Decision, Policy, State
from rsc.registry.tracking import load_version, use_registry
from rsc.serve.api import ActBatchRequest, ActBatchResponse, ActRequest, ActResponse, Health, ModelInfo
from rsc.serve.drift import EndpointDrift
from rsc.serve.http import VERSION_HEADER, BodyLimit, RequestMetrics, invalid_input, invalid_request
from rsc.serve.inference import InvalidInput, decide_grouped, observation, request_state, stacked
from rsc.serve.switch import HEARTBEAT_S

log = logging.getLogger("ray.serve")  # Serve writes this logger to the replica's log file

ERRORS = {413: {"description": "Request body or batch too large"}, 422: {"description": "Invalid input"}}
UNAVAILABLE = {503: {"description": "No model version has the alias yet (a fresh install)"}}


@dataclass(frozen=True)
class Loaded:
    """One loaded model version; replaced whole (its drift buffer starts afresh with it)."""

    version: int
    policy: Policy
    loaded_at: float
    drift: EndpointDrift | None = None  # None: the model has no reference rows, or drift is off


def _sink(monitor: MonitorSettings | None) -> MetricsSink:
    return NullSink() if monitor is None else sink_from_settings(monitor, "rsc-serve")


@serve.deployment(name="PolicyServer")
@serve.ingress()
class PolicyServer:
    """Serves ``models:/<model_name>@<settings.alias>`` and follows the alias."""

    async def __init__(
        self,
        tracking_uri: str,
        model_name: str,
        controller: DeploymentHandle,
        settings: ServeSettings | None = None,
        monitor: MonitorSettings | None = None,
    ):
        self.model_name, self.settings = model_name, settings or ServeSettings()
        self.monitor = monitor or MonitorSettings(enabled=False)
        self.alias, self.controller = self.settings.alias, controller
        self.replica = serve.get_replica_context().replica_id.unique_id
        self.current: Loaded | None = None
        self.checked_at, self.last_error = time.monotonic(), None
        self.last_drift: dict[str, float] = {}  # feature -> PSI of the latest measurement
        await asyncio.to_thread(use_registry, tracking_uri)
        target = await controller.wait_for_target.remote(None, 0.0)
        if target is None:
            self.last_error = self._missing()
            log.warning("%s; answering 503 until the alias is set", self.last_error)
        else:
            await self._switch(target)
        self.sink = _sink(monitor)
        self._decide_batched.set_max_batch_size(self.settings.max_batch_size)
        self._decide_batched.set_batch_wait_timeout_s(self.settings.batch_wait_timeout_s)
        self._follower = asyncio.get_running_loop().create_task(self._follow_controller())
        self._drift_watch = (
            asyncio.get_running_loop().create_task(self._watch_drift())
            if self.settings.drift_every_s
            else None
        )

    def _loaded(self, version: int, policy: Policy) -> Loaded:
        drift = None
        if self.settings.drift_every_s and policy.drift_reference is not None and policy.portfolio is None:
            names = list(policy.feature_names)
            drift = EndpointDrift(
                names, policy.drift_reference, self.settings.drift_window, self.monitor.drift_bins
            )
        return Loaded(version, policy, time.time(), drift)

    def __serve_build_asgi_app__(self) -> FastAPI:
        """The HTTP API of this replica (built after ``__init__``, so it sees the replica's settings)."""
        return build_api(self)

    async def _switch(self, version: int) -> None:
        """Load ``version`` beside the one served, then swap the reference requests read."""
        policy = await asyncio.to_thread(load_version, self.model_name, version)
        previous = self.current.version if self.current else None
        self.current = self._loaded(version, policy)
        log.info("%s@%s: now serving version %d (was %s)", self.model_name, self.alias, version, previous)

    async def _follow_controller(self) -> None:
        """Serve the controller's version; report what is served (a heartbeat when nothing changes)."""
        while True:
            try:
                known = self.current.version if self.current else None
                target = await self.controller.wait_for_target.remote(known, HEARTBEAT_S)
                self.checked_at = time.monotonic()
                if target is not None and target != known:
                    await self._switch(target)
                serving = self.current.version if self.current else None
                self.last_error = None if self.current else self._missing()
                await self.controller.report.remote(self.replica, serving)
            except Exception as error:  # keep serving the loaded version; /healthz reports the error
                self.last_error = f"{type(error).__name__}: {error}"
                serving = self.current.version if self.current else None
                log.warning("alias follow failed, still serving version %s: %s", serving, error)
                await asyncio.sleep(HEARTBEAT_S)

    async def _watch_drift(self) -> None:
        """Every ``serve.drift_every_s``: PSI and KS of the buffered requests' features, as gauges."""
        while True:
            await asyncio.sleep(self.settings.drift_every_s)
            current = self.current
            if current is None or current.drift is None:
                continue
            try:
                measured = await asyncio.to_thread(current.drift.measure)
            except Exception as error:  # a measurement that fails never touches serving
                log.warning("drift measurement failed: %s", error)
                continue
            if measured is None:
                continue
            tags = {"model_version": str(current.version)}
            for row in measured:
                self.sink.send(
                    Metric(names.SERVE_DRIFT_PSI, row.psi, "gauge", {**tags, "feature": row.feature})
                )
                self.sink.send(
                    Metric(names.SERVE_DRIFT_KS, row.ks, "gauge", {**tags, "feature": row.feature})
                )
            self.last_drift = {row.feature: round(row.psi, 4) for row in measured}
            worst = max(measured, key=lambda row: row.psi)
            if worst.psi > self.monitor.drift_psi_alert:
                log.warning(
                    "requests drift from the training rows: PSI %.3f on %s (alert above %s, KS %.3f)",
                    worst.psi, worst.feature, self.monitor.drift_psi_alert, worst.ks,
                )  # fmt: skip

    def _observed(self, current: Loaded, obs: np.ndarray) -> None:
        """Keep the latest feature row of a single-asset observation for the drift watch."""
        if current.drift is not None:
            n_features, window = len(current.policy.feature_names), current.policy.window
            current.drift.observe(obs[(window - 1) * n_features : window * n_features])

    def _missing(self) -> str:
        return f"registered model {self.model_name!r} has no @{self.alias} version yet"

    def _serving(self) -> Loaded:
        """The loaded version, or 503 while the alias names none."""
        current = self.current
        if current is None:
            raise HTTPException(
                503,
                f"{self._missing()}: nothing to serve until a version is registered and given the alias "
                f"(run the pipeline, or `rsc registry promote VERSION`)",
            )
        return current

    def check_health(self) -> None:
        """Serve's replica health check: the alias follower must be alive."""
        if self._follower.done():
            raise RuntimeError("the alias follower stopped")

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.0)
    async def _decide_batched(self, items: list[tuple[Policy, np.ndarray, State | None]]) -> list[Decision]:
        self.sink.send(Metric(names.SERVE_BATCH_SIZE, len(items), "histogram", {}))
        return decide_grouped(items)

    async def act(self, request: ActRequest) -> ActResponse:
        current = self._serving()  # read once: the whole request uses this version
        state = request_state(current.policy, request)
        if request.bars is None and request.assets is None:
            obs = observation(current.policy, request)
        else:  # indicators over a few hundred bars take milliseconds: keep the event loop serving
            obs = await asyncio.to_thread(observation, current.policy, request)
        self._observed(current, obs)
        if self.settings.max_batch_size > 1:
            decision = await self._decide_batched((current.policy, obs, state))
        else:
            decision = decide_grouped([(current.policy, obs, state)])[0]
        return self._response(current, decision, obs if request.include_observation else None)

    async def act_many(self, request: ActBatchRequest) -> ActBatchResponse:
        if len(request.requests) > self.settings.max_batch_requests:
            raise HTTPException(
                413, f"{len(request.requests)} requests in one batch, over {self.settings.max_batch_requests}"
            )
        current = self._serving()
        states = [
            request_state(current.policy, r, ("body", "requests", i)) for i, r in enumerate(request.requests)
        ]

        def observations_of_all() -> np.ndarray:
            return np.stack(
                [
                    observation(current.policy, r, ("body", "requests", i))
                    for i, r in enumerate(request.requests)
                ]
            )

        if any(
            r.bars is not None or r.assets is not None for r in request.requests
        ):  # indicators: off the loop
            observations = await asyncio.to_thread(observations_of_all)
        else:
            observations = observations_of_all()
        for obs in observations:
            self._observed(current, obs)
        shown = [r.include_observation for r in request.requests]
        decisions = current.policy.decide_batch(observations, stacked(current.policy, states))
        results = [
            self._response(current, d, o if show else None)
            for d, o, show in zip(decisions, observations, shown, strict=True)
        ]
        return ActBatchResponse(results=results, model_name=self.model_name, model_version=current.version)

    def _response(self, current: Loaded, decision: Decision, obs: np.ndarray | None = None) -> ActResponse:
        return ActResponse(
            action=decision.action,
            target_position=decision.target_position,
            model_name=self.model_name,
            model_version=current.version,
            observation=None if obs is None else obs.astype(np.float32).tolist(),
            state=None if decision.state is None else {k: v.tolist() for k, v in decision.state.items()},
            weights=decision.weights,
        )

    async def model_info(self) -> ModelInfo:
        current = self._serving()
        try:
            switch = await self.controller.status.remote()
        except Exception as error:  # the controller is restarting: the model is still served
            log.warning("no switch status from the alias controller: %s", error)
            switch = {"announced_version": None, "replica_versions": {}}
        return ModelInfo(
            model_name=self.model_name,
            model_version=current.version,
            alias=self.alias,
            window=current.policy.window,
            min_bars=current.policy.min_bars,
            feature_names=current.policy.feature_names,
            positions=current.policy.positions,
            kind="portfolio" if current.policy.portfolio else "single",
            symbols=_symbols(current.policy),
            symbol_required=bool(current.policy.universe and current.policy.universe.embedding),
            announced_version=switch["announced_version"],
            replica_versions=switch["replica_versions"],
        )

    def health(self) -> Health:
        return Health(
            status="ok" if self.current else "waiting for a model",
            model_name=self.model_name,
            model_version=self.current.version if self.current else None,
            alias=self.alias,
            alias_checked_s_ago=round(time.monotonic() - self.checked_at, 3),
            last_error=self.last_error,
            drift_psi=self.last_drift or None,
        )


def _symbols(policy: Policy) -> list[str] | None:
    """The symbols a portfolio allocates across or a universe policy acts on (None: one symbol)."""
    named = policy.portfolio or policy.universe
    return list(named.symbols) if named else None


def _json(model: ActResponse | ActBatchResponse) -> Response:
    """The answer with the version that gave it in a header too (request metrics are tagged with it)."""
    return Response(
        model.model_dump_json(exclude_none=True),  # no "observation": null unless asked for
        media_type="application/json",
        headers={VERSION_HEADER: str(model.model_version)},
    )


def build_api(server: PolicyServer) -> FastAPI:
    """Routes over one replica; limits and metrics from its settings."""
    api = FastAPI(
        title="rsc policy server",
        version="1",
        description="Actions of the registered trading policy behind a model alias.",
    )
    api.add_exception_handler(RequestValidationError, invalid_request)
    api.add_exception_handler(InvalidInput, invalid_input)

    # The hot routes return their JSON themselves: the models are built by this code, so FastAPI's
    # second validation of the response would only cost time (about a third of the app's own).
    @api.post("/v1/act", response_model=ActResponse, responses={**ERRORS, **UNAVAILABLE})
    async def act(request: ActRequest) -> Response:
        """The action for a window of bars (or of raw features) and the current position; for a portfolio
        policy, the target weight of each symbol for every symbol's window and the current weights."""
        return _json(await server.act(request))

    @api.post("/v1/act/batch", response_model=ActBatchResponse, responses={**ERRORS, **UNAVAILABLE})
    async def act_batch(request: ActBatchRequest) -> Response:
        """Several windows at once (e.g. several symbols), answered by one model version."""
        return _json(await server.act_many(request))

    @api.get("/v1/model", response_model=ModelInfo, responses=UNAVAILABLE)
    async def model() -> ModelInfo:
        """The version being served and what a request must carry."""
        return await server.model_info()

    @api.get("/healthz", response_model=Health)
    async def healthz() -> Health:
        return server.health()

    api.add_middleware(BodyLimit, max_bytes=server.settings.max_body_bytes)
    api.add_middleware(
        RequestMetrics,
        sink=server.sink,
        version=lambda: server.current.version if server.current else 0,
        endpoints=frozenset(route.path for route in api.routes),
    )
    return api
