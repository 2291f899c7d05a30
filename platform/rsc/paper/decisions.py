"""Where decisions come from: the Serve endpoint over HTTP, or a registered policy in process.

Both act on a window of raw OHLCV bars, oldest first, with the book's current weight and the open
position's unrealised return, and answer with the model's target weight; a portfolio policy acts on
every symbol's window and the book's weights at once, and answers with a weight per symbol. A source
that cannot answer raises :class:`DecisionUnavailable`; the trader then retries with backoff and holds.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, NamedTuple, Protocol

import numpy as np
import requests

from rsc.core.features import Bars
from rsc.core.schema import OHLCV_COLUMNS, TIMESTAMP

if TYPE_CHECKING:
    from rsc.registry.policy import Policy

# Bars beyond the model's minimum, so that recursive indicators (Wilder's RSI) converge to the values
# training saw on the full history.
INDICATOR_LOOKBACK = 250


log = logging.getLogger(__name__)


class Window(NamedTuple):
    """A symbol's latest bars, oldest first: ISO timestamps ``[T]`` and OHLCV values ``[T, 5]``."""

    timestamps: list[str]
    values: np.ndarray

    def bars(self) -> Bars:
        return Bars.from_columns({name: self.values[:, j] for j, name in enumerate(OHLCV_COLUMNS)})


# A recurrent policy's state in JSON form (key -> [layers][cell]), as the ledger and the endpoint carry it.
JsonState = dict[str, list]


class ModelDecision(NamedTuple):
    action: int | float | None  # None for a portfolio policy (its answer is ``weights``)
    target_position: float | None
    model_name: str
    model_version: int
    state: JsonState | None = None  # a recurrent policy's state after this bar (sent with the next one)
    weights: dict[str, float] | None = None  # a portfolio policy's target weight per symbol


class DecisionUnavailable(RuntimeError):
    """The model could not answer (endpoint down, timeout, error status, malformed answer)."""


class DecisionSource(Protocol):
    def min_bars(self) -> int:
        """Fewest bars a window must hold."""
        ...

    def decide(
        self,
        window: Window,
        position: float,
        unrealised: float,
        state: JsonState | None = None,
        symbol: str | None = None,
    ) -> ModelDecision:
        """The model's decision on ``symbol``'s bars; ``state`` is a recurrent model's state after the
        previous bar."""
        ...

    def decide_weights(self, windows: dict[str, Window], weights: dict[str, float]) -> ModelDecision:
        """A portfolio model's target weights from every symbol's window and the book's weights."""
        ...


class HttpDecisions:
    """``GET /v1/model`` and ``POST /v1/act`` of the policy endpoint (``rsc.serve``)."""

    def __init__(self, endpoint: str, timeout_s: float = 30.0, session: requests.Session | None = None):
        self.endpoint, self.timeout_s = endpoint.rstrip("/"), timeout_s
        self.session = session or requests.Session()
        self.named_symbols = False  # /v1/model says whether the policy takes the symbol

    def _call(self, method: str, path: str, payload: dict | None = None) -> dict:
        url = f"{self.endpoint}{path}"
        try:
            response = self.session.request(method, url, json=payload, timeout=self.timeout_s)
        except requests.RequestException as error:
            raise DecisionUnavailable(f"{url}: {type(error).__name__}: {error}") from error
        if response.status_code != 200:
            raise DecisionUnavailable(f"{url}: HTTP {response.status_code}: {response.text[:300]}")
        try:
            return response.json()
        except ValueError as error:
            raise DecisionUnavailable(f"{url}: not JSON: {response.text[:300]}") from error

    def min_bars(self) -> int:
        info = self._call("GET", "/v1/model")
        # Only a policy trained across several symbols takes the symbol (older endpoints refuse the field).
        self.named_symbols = bool(info.get("symbols")) and info.get("kind", "single") == "single"
        try:
            return int(info["min_bars"])
        except (KeyError, TypeError, ValueError) as error:
            raise DecisionUnavailable(f"{self.endpoint}/v1/model: no min_bars in {info}") from error

    def decide(
        self,
        window: Window,
        position: float,
        unrealised: float,
        state: JsonState | None = None,
        symbol: str | None = None,
    ) -> ModelDecision:
        bars = [
            {TIMESTAMP: stamp, **dict(zip(OHLCV_COLUMNS, row, strict=True))}
            for stamp, row in zip(window.timestamps, window.values.tolist(), strict=True)
        ]
        payload = {"bars": bars, "position": position, "unrealised_return": unrealised}
        if symbol is not None and self.named_symbols:
            payload["symbol"] = symbol
        answer = self._call("POST", "/v1/act", {**payload, **({"state": state} if state is not None else {})})
        try:
            return ModelDecision(
                answer["action"],
                float(answer["target_position"]),
                str(answer["model_name"]),
                int(answer["model_version"]),
                answer.get("state"),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise DecisionUnavailable(f"{self.endpoint}/v1/act: malformed answer {answer}") from error

    def decide_weights(self, windows: dict[str, Window], weights: dict[str, float]) -> ModelDecision:
        assets = {
            symbol: [
                {TIMESTAMP: stamp, **dict(zip(OHLCV_COLUMNS, row, strict=True))}
                for stamp, row in zip(window.timestamps, window.values.tolist(), strict=True)
            ]
            for symbol, window in windows.items()
        }
        answer = self._call("POST", "/v1/act", {"assets": assets, "weights": weights})
        try:
            targets = {str(symbol): float(value) for symbol, value in answer["weights"].items()}
            return ModelDecision(
                None, None, str(answer["model_name"]), int(answer["model_version"]), weights=targets
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise DecisionUnavailable(f"{self.endpoint}/v1/act: malformed answer {answer}") from error


class PolicyDecisions:
    """A policy in this process: the same feature code and network the endpoint serves."""

    def __init__(self, policy: Policy, model_name: str, model_version: int):
        self.policy, self.model_name, self.model_version = policy, model_name, model_version

    def min_bars(self) -> int:
        return self.policy.min_bars

    def decide(
        self,
        window: Window,
        position: float,
        unrealised: float,
        state: JsonState | None = None,
        symbol: str | None = None,
    ) -> ModelDecision:
        try:
            features = self.policy.features_from_bars(window.bars())
            recurrent = self.policy.recurrent
            carried = recurrent.check(state) if recurrent is not None and state is not None else None
            decision = self.policy.decide(features, position, unrealised, carried, symbol)
        except (ValueError, RuntimeError) as error:
            raise DecisionUnavailable(f"{self.model_name} v{self.model_version}: {error}") from error
        out = None if decision.state is None else {k: v.tolist() for k, v in decision.state.items()}
        return ModelDecision(
            decision.action, decision.target_position, self.model_name, self.model_version, out
        )

    def decide_weights(self, windows: dict[str, Window], weights: dict[str, float]) -> ModelDecision:
        portfolio = self.policy.portfolio
        try:
            if portfolio is None:
                raise ValueError("this policy trades a single asset, not a portfolio")
            missing = sorted(set(portfolio.symbols) - set(windows))
            if missing:
                raise ValueError(f"no bars for symbol(s) {missing}")
            features = np.stack(
                [self.policy.features_from_bars(windows[s].bars()) for s in portfolio.symbols], axis=1
            )
            held = np.array([weights.get(s, 0.0) for s in portfolio.symbols])
            targets = self.policy.weights_for(features, held)
        except (ValueError, RuntimeError) as error:
            raise DecisionUnavailable(f"{self.model_name} v{self.model_version}: {error}") from error
        return ModelDecision(None, None, self.model_name, self.model_version, weights=targets)


class RegistryDecisions:
    """``models:/<name>@<alias>`` in process, following the alias: it is resolved again at most every
    ``follow_s`` seconds, and a new version is loaded, then swapped in (a challenger registered while the
    trader runs starts its shadow without a restart)."""

    def __init__(self, tracking_uri: str, model_name: str, alias: str, follow_s: float, clock=time.monotonic):
        from rsc.registry.tracking import load_policy

        self.model_name, self.alias, self.follow_s, self.clock = model_name, alias, follow_s, clock
        version, policy = load_policy(tracking_uri, model_name, alias)
        self.current = PolicyDecisions(policy, model_name, version)
        self.checked_at = clock()

    def _follow(self) -> PolicyDecisions:
        if self.clock() - self.checked_at < self.follow_s:
            return self.current
        from rsc.registry.tracking import load_version, resolve_alias

        self.checked_at = self.clock()
        try:
            version = resolve_alias(self.model_name, self.alias)
            if version is not None and version != self.current.model_version:
                policy = load_version(self.model_name, version)
                log.info("paper: %s@%s moved to version %d", self.model_name, self.alias, version)
                self.current = PolicyDecisions(policy, self.model_name, version)
        except Exception as error:  # keep deciding with the loaded version
            log.warning("paper: could not follow %s@%s: %s", self.model_name, self.alias, error)
        return self.current

    def min_bars(self) -> int:
        return self._follow().min_bars()

    def decide(
        self,
        window: Window,
        position: float,
        unrealised: float,
        state: JsonState | None = None,
        symbol: str | None = None,
    ) -> ModelDecision:
        return self._follow().decide(window, position, unrealised, state, symbol)

    def decide_weights(self, windows: dict[str, Window], weights: dict[str, float]) -> ModelDecision:
        return self._follow().decide_weights(windows, weights)
