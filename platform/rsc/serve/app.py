"""The Ray Serve deployment: FastAPI ingress over the registered policy (``models:/<name>@champion``)."""

import logging

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from ray import serve

from rsc.core.features import Bars
from rsc.registry.policy import Policy
from rsc.registry.tracking import load_policy
from rsc.serve.api import ActRequest, ActResponse, ModelInfo

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_000_000

api = FastAPI(title="rsc policy server", version="1")


@api.middleware("http")
async def limit_body_size(request: Request, call_next):
    length = request.headers.get("content-length")
    if length is not None and int(length) > MAX_BODY_BYTES:
        return JSONResponse(status_code=413, content={"detail": f"request body over {MAX_BODY_BYTES} bytes"})
    return await call_next(request)


@api.exception_handler(RequestValidationError)
async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
    """422 naming each bad field; the offending input is left out (it may hold NaN, not valid JSON)."""
    detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in error.errors()]
    return JSONResponse(status_code=422, content={"detail": detail})


@serve.deployment
@serve.ingress(api)
class PolicyServer:
    def __init__(self, tracking_uri: str, model_name: str, alias: str):
        self.model_name, self.alias = model_name, alias
        self.version, self.policy = load_policy(tracking_uri, model_name, alias)
        log.info("serving %s version %d (@%s)", model_name, self.version, alias)

    def _features(self, request: ActRequest) -> np.ndarray:
        policy: Policy = self.policy
        if request.bars is not None:
            if len(request.bars) < policy.min_bars:
                raise HTTPException(
                    422, f"'bars' needs at least {policy.min_bars} bars, got {len(request.bars)}"
                )
            columns = {name: np.array([getattr(b, name) for b in request.bars]) for name in Bars._fields}
            return policy.features_from_bars(Bars.from_columns(columns))
        if request.feature_names is not None and request.feature_names != policy.feature_names:
            raise HTTPException(
                422, f"'feature_names' must be {policy.feature_names}, got {request.feature_names}"
            )
        features = np.asarray(request.features, dtype=np.float64)
        expected = (policy.window, len(policy.feature_names))
        if features.ndim != 2 or features.shape != expected:
            raise HTTPException(
                422,
                f"'features' must have shape {list(expected)} (window x features), "
                f"got {list(features.shape)}",
            )
        return features

    @api.post("/v1/act", response_model=ActResponse)
    def act(self, request: ActRequest) -> ActResponse:
        decision = self.policy.decide(self._features(request), request.position, request.unrealised_return)
        return ActResponse(
            action=decision.action,
            target_position=decision.target_position,
            model_name=self.model_name,
            model_version=self.version,
        )

    @api.get("/v1/model", response_model=ModelInfo)
    def model(self) -> ModelInfo:
        return ModelInfo(
            model_name=self.model_name,
            model_version=self.version,
            alias=self.alias,
            window=self.policy.window,
            min_bars=self.policy.min_bars,
            feature_names=self.policy.feature_names,
            positions=self.policy.positions,
        )

    @api.get("/healthz")
    def healthz(self) -> dict[str, str]:
        return {"status": "ok"}
