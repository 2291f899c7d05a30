"""Request and response models of the policy endpoint (validated by FastAPI/pydantic).

Field names are a contract with HTTP clients (the paper-trading service among them): add, never rename.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class RequestBar(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    timestamp: str | None = Field(None, description="ISO timestamp (informational).")
    open: float = Field(gt=0)
    high: float = Field(gt=0)
    low: float = Field(gt=0)
    close: float = Field(gt=0)
    volume: float = Field(ge=0)


class ActRequest(BaseModel):
    """One of: ``bars`` (oldest first, at least the model's ``min_bars``) or a ``features`` window for a
    single-asset policy; ``assets`` (bars per symbol) or ``asset_features`` (a features window per
    symbol) for a portfolio policy, with its current ``weights``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    bars: list[RequestBar] | None = Field(None, description="Window of OHLCV bars, oldest first.")
    features: list[list[float]] | None = Field(
        None, description="Window [W][F] of raw features, oldest first."
    )
    feature_names: list[str] | None = Field(None, description="Names of the feature columns, in order.")
    position: float = Field(0.0, ge=-10, le=10, description="Current position weight.")
    unrealised_return: float = Field(
        0.0, description="Return of the open position since entry (0 when flat)."
    )
    include_observation: bool = Field(
        False,
        description="Also return the observation the policy acted on (to check training/serving parity).",
    )
    state: dict[str, list[list[float]]] | None = Field(
        None,
        description="A recurrent policy's state, as the previous answer gave it (per key, [layers][cell]); "
        "none: the initial state. Any replica can answer: the endpoint keeps no state of its own.",
    )
    assets: dict[str, list[RequestBar]] | None = Field(
        None,
        description="Portfolio policy: per symbol, a window of OHLCV bars on the same timestamps, oldest "
        "first (at least min_bars each).",
    )
    asset_features: dict[str, list[list[float]]] | None = Field(
        None, description="Portfolio policy: per symbol, a window [W][F] of raw features, oldest first."
    )
    weights: dict[str, float] | None = Field(
        None, description="Portfolio policy: the current weight of each symbol (missing ones: 0)."
    )
    symbol: str | None = Field(
        None,
        description="The symbol the bars are of: a policy trained across several symbols acts on any of "
        "them (/v1/model lists them) and needs it named when it tells them apart.",
    )

    @model_validator(mode="after")
    def _one_input(self) -> ActRequest:
        given = [name for name in INPUTS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(map(repr, INPUTS))}; got {given or 'none'}")
        return self


INPUTS = ("bars", "features", "assets", "asset_features")


class ActResponse(BaseModel):
    action: int | float | None = Field(
        None, description="Single-asset policy: index into positions (discrete) or the continuous action."
    )
    target_position: float | None = Field(
        None, description="Single-asset policy: the position weight the action asks for."
    )
    weights: dict[str, float] | None = Field(
        None, description="Portfolio policy: the target weight of each symbol (the rest is cash)."
    )
    model_name: str
    model_version: int
    observation: list[float] | None = Field(
        None, description="The observation acted on (float32 values), when the request asked for it."
    )
    state: dict[str, list[list[float]]] | None = Field(
        None, description="A recurrent policy's state after this bar: send it with the next bar's request."
    )


class ActBatchRequest(BaseModel):
    """Several independent ``/v1/act`` requests, answered in order by one model version."""

    model_config = ConfigDict(extra="forbid")

    requests: list[ActRequest] = Field(min_length=1, description="The requests, each as for /v1/act.")


class ActBatchResponse(BaseModel):
    results: list[ActResponse]
    model_name: str
    model_version: int


class Health(BaseModel):
    status: str = Field(description="ok while the replica serves a loaded version; else what it waits for.")
    model_name: str
    model_version: int | None = Field(description="The version served; None before the alias names one.")
    alias: str
    alias_checked_s_ago: float = Field(
        description="Seconds since this replica last heard the alias's version from the app's controller."
    )
    last_error: str | None = Field(None, description="Why the last alias check failed, if it did.")
    drift_psi: dict[str, float] | None = Field(
        None, description="PSI per feature of this replica's latest requests against the training rows."
    )


class ModelInfo(BaseModel):
    model_name: str
    model_version: int
    alias: str
    window: int
    min_bars: int
    feature_names: list[str]
    positions: list[float]
    kind: str = Field("single", description="single (one asset per request) or portfolio.")
    symbols: list[str] | None = Field(
        None, description="The symbols a portfolio policy allocates across, or a universe policy acts on."
    )
    symbol_required: bool = Field(False, description="Requests must name their 'symbol'.")
    announced_version: int | None = Field(
        None,
        description="The version every running replica serves, announced by the app's alias controller: a "
        "request started after it was announced is answered by it. During a switch it is still the old one.",
    )
    replica_versions: dict[str, int | None] = Field(
        default_factory=dict, description="The version each running replica reported serving."
    )
