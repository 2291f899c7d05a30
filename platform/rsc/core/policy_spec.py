"""The policy contract: what a policy observes and what its action means, in one typed object.

The env, the backtester, the registered pyfunc, the Serve app and the paper trader all build
observations with :meth:`ObservationSpec.build` and turn actions into target positions with
:meth:`ActionSpec.decode`, so a policy sees in serving exactly what it saw in training.
``policy.json`` is a :class:`PolicySpec` serialised with its ``schema_version``; a version 1 file
(written before the contract had a version) is read through :func:`upgrade_v1`, so registered
champions keep serving. A newer version than this code knows is refused with a clear message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rsc.core import observation
from rsc.core.execution import normalise_weights
from rsc.core.features import IndicatorRef, feature_names

SCHEMA_VERSION = 2
POSITION_SLOTS: tuple[str, ...] = ("weight", "unrealised_return")  # after the feature rows, in order


class PolicySpecError(ValueError):
    """A ``policy.json`` this code cannot act on; the message says what is wrong."""


class _Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IndicatorSpec(_Contract):
    name: str
    window: int = Field(ge=1)
    params: dict[str, float] = Field(default_factory=dict)

    @property
    def ref(self) -> IndicatorRef:
        return IndicatorRef.of(self.name, self.window, self.params)


class ScalerSpec(_Contract):
    """Statistics fitted on training rows only, per feature column."""

    columns: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @model_validator(mode="after")
    def _same_lengths(self) -> ScalerSpec:
        if not len(self.columns) == len(self.mean) == len(self.std):
            raise ValueError(
                f"scaler: {len(self.columns)} columns, {len(self.mean)} means, {len(self.std)} stds"
            )
        return self

    def apply(self, features: np.ndarray) -> np.ndarray:
        """``[..., F]`` raw features -> scaled and clipped, float32."""
        mean, std = np.asarray(self.mean, dtype=np.float64), np.asarray(self.std, dtype=np.float64)
        return observation.scale(features, mean, std).astype(np.float32)


class ObservationSpec(_Contract):
    """``[window * F + slots]``: feature rows ``t - window + 1 .. t`` (oldest first), then the slots."""

    window: int = Field(ge=1)
    features: tuple[str, ...]
    slots: tuple[str, ...] = POSITION_SLOTS

    @model_validator(mode="after")
    def _known_slots(self) -> ObservationSpec:
        if self.slots != POSITION_SLOTS:
            raise ValueError(f"observation slots {self.slots} are not this code's {POSITION_SLOTS}")
        return self

    @property
    def size(self) -> int:
        return self.window * len(self.features) + len(self.slots)

    def build(self, scaled: np.ndarray, weight: float, unrealised: float) -> np.ndarray:
        """The observation at the last row of ``scaled`` (``[>= window, F]``, already scaled)."""
        if scaled.shape[-1] != len(self.features):
            raise ValueError(f"expected {len(self.features)} feature columns, got {scaled.shape[-1]}")
        return observation.observe(scaled, len(scaled) - 1, self.window, weight, unrealised)


class ActionSpec(_Contract):
    """How an action becomes a target position weight."""

    kind: Literal["discrete", "continuous"]
    positions: tuple[float, ...] = (0.0, 1.0)  # discrete: the target of each action index
    max_position: float = Field(1.0, gt=0)

    @property
    def targets(self) -> tuple[float, ...]:
        """Discrete: each index's target weight, within ``max_position``."""
        return tuple(max(-self.max_position, min(self.max_position, p)) for p in self.positions)

    def decode(self, action: Any) -> float:
        """Target weight of one action: ``positions[index]``, or ``clip(a[0] * max_position)``."""
        if self.kind == "discrete":
            return self.targets[int(action)]
        value = float(np.ravel(action)[0]) * self.max_position
        return max(-self.max_position, min(self.max_position, value))

    def raw(self, action: Any) -> int | float:
        """The action as reported (an index, or the first continuous component)."""
        return int(action) if self.kind == "discrete" else float(np.ravel(action)[0])


class RecurrentSpec(_Contract):
    """The state a recurrent policy carries from bar to bar: per key, the shape of one sample
    (RLlib's LSTM: ``c`` and ``h``, ``[layers, cell]``), passed to the network in sorted key order."""

    state: dict[str, tuple[int, ...]]

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(sorted(self.state))

    def initial(self, batch: int = 1) -> dict[str, np.ndarray]:
        """The initial (zero) state of ``batch`` independent sequences, ``[batch, *shape]`` each."""
        return {key: np.zeros((batch, *self.state[key]), dtype=np.float32) for key in self.keys}

    def check(self, state: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """One sample's state as sent back by a caller, as float32 arrays; an error names what is off."""
        if set(state) != set(self.state):
            raise ValueError(f"state must have the keys {sorted(self.state)}, got {sorted(state)}")
        out = {}
        for key in self.keys:
            value = np.asarray(state[key], dtype=np.float32)
            if value.shape != tuple(self.state[key]) or not np.isfinite(value).all():
                raise ValueError(f"state[{key!r}] must be finite with shape {list(self.state[key])}")
            out[key] = value
        return out


class CostSpec(_Contract):
    """The execution the policy was trained with (evaluation and paper trading charge the same)."""

    fill: Literal["next_open", "next_close"] = "next_open"
    commission_bps: float = 5.0
    slippage_bps: float = 2.0
    spread_factor: float = 0.0
    borrow_bps_per_year: float = 0.0


class PortfolioSpec(_Contract):
    """A portfolio policy (``rsc/Portfolio-v0``): its assets, in observation and weight order, and the
    limits its weights were trained within.

    Observation ``[window * N * F + N]``: the ``[window, N, F]`` scaled feature window flattened (time,
    then asset, then feature), then each asset's current weight. Action: ``N + 1`` scores (last = cash),
    normalised into weights by :func:`rsc.core.execution.normalise_weights`.
    """

    symbols: tuple[str, ...] = Field(min_length=2)
    max_position: float = Field(1.0, gt=0)
    max_leverage: float = Field(1.0, gt=0)

    def size(self, window: int, n_features: int) -> int:
        return window * len(self.symbols) * n_features + len(self.symbols)

    def build(self, scaled: np.ndarray, weights: Sequence[float]) -> np.ndarray:
        """The observation from ``[>= window, N, F]`` scaled features (oldest first) and ``[N]`` weights."""
        n_assets = len(self.symbols)
        if scaled.ndim != 3 or scaled.shape[1] != n_assets:
            raise ValueError(f"expected features [window, {n_assets} assets, F], got {list(scaled.shape)}")
        if len(weights) != n_assets:
            raise ValueError(
                f"expected {n_assets} current weights ({list(self.symbols)}), got {len(weights)}"
            )
        window = len(scaled)
        return np.concatenate(
            [scaled.reshape(window, -1).ravel(), np.asarray(weights, dtype=np.float64)]
        ).astype(np.float32)

    def decode(self, action: Any) -> dict[str, float]:
        """``N + 1`` scores -> target weight per symbol, within the trained limits (as the env does)."""
        scores = np.ravel(np.asarray(action, dtype=np.float64))
        if len(scores) != len(self.symbols) + 1:
            raise ValueError(
                f"expected {len(self.symbols) + 1} scores (assets, then cash), got {len(scores)}"
            )
        weights = normalise_weights(scores, self.max_position, self.max_leverage)
        return {symbol: float(w) for symbol, w in zip(self.symbols, weights, strict=True)}


class UniverseSpec(_Contract):
    """A single-asset policy trained across several symbols (an episode per symbol).

    It acts on any of ``symbols``; with ``embedding`` its observation ends with a one-hot of the symbol
    (in this order), so a request must name the symbol.
    """

    symbols: tuple[str, ...] = Field(min_length=2)
    embedding: bool = False

    def code(self, symbol: str | None) -> np.ndarray:
        """The observation's tail for ``symbol``: its one-hot with ``embedding``, else nothing."""
        if symbol is not None and symbol not in self.symbols:
            raise ValueError(f"symbol {symbol!r} is not one this policy was trained on: {list(self.symbols)}")
        if not self.embedding:
            return np.zeros(0, dtype=np.float32)
        if symbol is None:
            raise ValueError(f"this policy tells its symbols apart: name one of {list(self.symbols)}")
        return np.eye(len(self.symbols), dtype=np.float32)[self.symbols.index(symbol)]


class PolicySpec(_Contract):
    """A trained policy's inputs and outputs (serialised as ``policy.json``)."""

    schema_version: Literal[2] = SCHEMA_VERSION
    algorithm: str
    algorithm_config: str = ""
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    indicators: tuple[IndicatorSpec, ...]
    scaler: ScalerSpec
    observation: ObservationSpec
    action: ActionSpec
    costs: CostSpec = CostSpec()
    recurrent: RecurrentSpec | None = Field(None, description="The state it carries; None: feed-forward.")
    portfolio: PortfolioSpec | None = Field(
        None, description="A portfolio policy's assets and weight limits; None: a single-asset policy."
    )
    universe: UniverseSpec | None = Field(
        None, description="The symbols a single-asset policy was trained across; None: one symbol."
    )
    env: dict[str, Any] = Field(default_factory=dict, description="The env settings it was trained in.")
    best_iteration: int = 0
    validation: dict[str, float] = Field(default_factory=dict)
    inputs: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_feature_order(self) -> PolicySpec:
        names = tuple(feature_names([i.ref for i in self.indicators]))
        if not names == self.observation.features == self.scaler.columns:
            observed, scaled = list(self.observation.features), list(self.scaler.columns)
            raise ValueError(
                f"feature order differs: indicators {list(names)}, observation {observed}, scaler {scaled}"
            )
        return self

    @property
    def refs(self) -> list[IndicatorRef]:
        return [i.ref for i in self.indicators]

    @property
    def observation_size(self) -> int:
        if self.portfolio is not None:
            return self.portfolio.size(self.observation.window, len(self.observation.features))
        embedded = len(self.universe.symbols) if self.universe is not None and self.universe.embedding else 0
        return self.observation.size + embedded

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "policy.json") -> PolicySpec:
        """Read ``policy.json`` of any known version (version 1 through :func:`upgrade_v1`)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise PolicySpecError(f"{source}: not JSON: {error}") from error
        version = data.get("schema_version", 1)
        if version == 1:
            data = upgrade_v1(data)
        elif version != SCHEMA_VERSION:
            raise PolicySpecError(
                f"{source}: schema_version {version} is not readable by this version of rsc (it reads 1 and "
                f"{SCHEMA_VERSION}): upgrade rsc to serve this policy"
            )
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in error.errors()
            )
            raise PolicySpecError(f"{source}: {problems}") from error

    @classmethod
    def for_env(
        cls,
        env: Mapping[str, Any],
        indicators: Sequence[IndicatorRef],
        scaler: Mapping[str, Any],
        **facts: Any,
    ) -> PolicySpec:
        """The contract of a policy trained in ``env`` (the env settings as a dict) on these features."""
        refs = list(indicators)
        specs = tuple(IndicatorSpec(name=r.name, window=r.window, params=r.resolved_params()) for r in refs)
        if env.get("kind") == "portfolio" and "portfolio" not in facts:
            raise ValueError(
                "a portfolio policy's contract needs its symbols: pass portfolio=PortfolioSpec(...)"
            )
        return cls(
            indicators=specs,
            scaler=ScalerSpec(
                columns=tuple(scaler["columns"]), mean=tuple(scaler["mean"]), std=tuple(scaler["std"])
            ),
            observation=ObservationSpec(window=int(env["window"]), features=tuple(feature_names(refs))),
            action=action_spec(env),
            costs=CostSpec(**{k: env[k] for k in CostSpec.model_fields if k in env}),
            env=dict(env),
            **facts,
        )


def action_spec(env: Mapping[str, Any]) -> ActionSpec:
    """The action contract of env settings (as a dict, or a model's ``model_dump()``); a portfolio's
    scores are continuous (their meaning is the contract's ``portfolio`` section)."""
    return ActionSpec(
        kind="continuous" if env.get("kind") == "portfolio" else env.get("action", "discrete"),
        positions=tuple(float(p) for p in env.get("positions", (0.0, 1.0))),
        max_position=float(env.get("max_position", 1.0)),
    )


def upgrade_v1(data: Mapping[str, Any]) -> dict[str, Any]:
    """A version 1 ``policy.json`` (flat keys, no version) as version 2 data."""
    try:
        env = dict(data.get("env") or {})
        env.setdefault("window", data["window"])
        env.setdefault("positions", data["positions"])
        refs = [IndicatorRef.from_dict(i) for i in data["indicators"]]
        names = feature_names(refs)
        scaler = data["scaler"]
        return {
            "schema_version": SCHEMA_VERSION,
            "algorithm": data.get("algorithm", "unknown"),
            "algorithm_config": data.get("algorithm_config", ""),
            "hyperparameters": data.get("hyperparameters", {}),
            "indicators": [{"name": r.name, "window": r.window, "params": r.resolved_params()} for r in refs],
            "scaler": {"columns": scaler.get("columns", names), "mean": scaler["mean"], "std": scaler["std"]},
            "observation": {"window": int(data["window"]), "features": names},
            "action": action_spec(env).model_dump(),
            "costs": {k: env[k] for k in CostSpec.model_fields if k in env},
            "env": env,
            "best_iteration": int(data.get("best_iteration", 0)),
            "validation": data.get("validation", {}),
            "inputs": data.get("inputs", {}),
        }
    except (KeyError, TypeError, ValueError) as error:
        raise PolicySpecError(f"policy.json (version 1): cannot be read: {error!r}") from error
