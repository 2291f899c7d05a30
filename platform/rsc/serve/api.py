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
    """Either ``bars`` (oldest first, at least the model's ``min_bars``) or a ``features`` window."""

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

    @model_validator(mode="after")
    def _one_input(self) -> ActRequest:
        if (self.bars is None) == (self.features is None):
            raise ValueError("give exactly one of 'bars' or 'features'")
        return self


class ActResponse(BaseModel):
    action: int | float = Field(description="Index into positions (discrete) or the continuous action.")
    target_position: float = Field(description="Position weight the action asks for.")
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
    alias_checked_s_ago: float = Field(description="Seconds since the alias was last resolved.")
    last_error: str | None = Field(None, description="Why the last alias check failed, if it did.")


class ModelInfo(BaseModel):
    model_name: str
    model_version: int
    alias: str
    window: int
    min_bars: int
    feature_names: list[str]
    positions: list[float]
