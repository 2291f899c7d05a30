"""From a validated request to the policy's decision: the checks that need the model, and batching.

Pydantic has already checked the request's types, NaN/inf and required fields; what depends on the
served version (window, feature names, bars needed) is checked here, each failure naming its field.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rsc.core.features import Bars
from rsc.registry.policy import Decision, Policy, State
from rsc.serve.api import ActRequest

Loc = tuple[str | int, ...]


class InvalidInput(ValueError):
    """A well-formed request that does not fit the served policy (answered with 422)."""

    def __init__(self, loc: Loc, message: str):
        super().__init__(message)
        self.loc, self.message = loc, message

    def detail(self) -> dict:
        return {"loc": list(self.loc), "msg": self.message, "type": "value_error"}


def request_features(policy: Policy, request: ActRequest, loc: Loc = ("body",)) -> np.ndarray:
    """The raw feature window ``[W, F]`` of a request (computed from its bars, or as given)."""
    if request.bars is not None:
        if len(request.bars) < policy.min_bars:
            raise InvalidInput(
                (*loc, "bars"), f"'bars' needs at least {policy.min_bars} bars, got {len(request.bars)}"
            )
        columns = {name: np.array([getattr(b, name) for b in request.bars]) for name in Bars._fields}
        features = policy.features_from_bars(Bars.from_columns(columns))
        if not np.isfinite(features).all():
            raise InvalidInput(
                (*loc, "bars"),
                "'bars' give non-finite features (flat prices or volume over an indicator window?)",
            )
        return features
    if request.feature_names is not None and request.feature_names != policy.feature_names:
        raise InvalidInput(
            (*loc, "feature_names"),
            f"'feature_names' must be {policy.feature_names}, got {request.feature_names}",
        )
    rows = request.features or []
    expected = (policy.window, len(policy.feature_names))
    shape = (len(rows), *sorted({len(row) for row in rows}))
    if shape != expected:
        raise InvalidInput(
            (*loc, "features"),
            f"'features' must have shape {list(expected)} (window x features), got "
            f"{len(rows)} rows of {sorted({len(row) for row in rows})} values",
        )
    return np.asarray(rows, dtype=np.float64)


def observation(policy: Policy, request: ActRequest, loc: Loc = ("body",)) -> np.ndarray:
    """The observation ``[D]`` the policy acts on: scaled feature window plus position state."""
    portfolio = request.assets is not None or request.asset_features is not None
    if policy.portfolio is not None:
        if not portfolio:
            raise InvalidInput(
                (*loc, "assets"),
                f"this policy allocates across {list(policy.portfolio.symbols)}: send 'assets' (bars per "
                "symbol) or 'asset_features', with the current 'weights'",
            )
        return portfolio_observation(policy, request, loc)
    if portfolio or request.weights is not None:
        field = "weights" if not portfolio else ("assets" if request.assets is not None else "asset_features")
        raise InvalidInput((*loc, field), "this policy trades one asset: send 'bars' or 'features'")
    features = request_features(policy, request, loc)
    try:
        return policy.observe_features(features, request.position, request.unrealised_return, request.symbol)
    except ValueError as error:  # a symbol the policy was not trained on, or none where it must be named
        raise InvalidInput((*loc, "symbol"), str(error)) from error


def portfolio_observation(policy: Policy, request: ActRequest, loc: Loc = ("body",)) -> np.ndarray:
    """A portfolio policy's observation: every symbol's feature window, then the current weights."""
    symbols = list(policy.portfolio.symbols)
    field = "assets" if request.assets is not None else "asset_features"
    given = request.assets if request.assets is not None else request.asset_features
    missing, unknown = sorted(set(symbols) - set(given)), sorted(set(given) - set(symbols))
    if missing or unknown:
        raise InvalidInput(
            (*loc, field), f"'{field}' must name exactly {symbols}; missing {missing}, unknown {unknown}"
        )
    weights = request.weights or {}
    if strange := sorted(set(weights) - set(symbols)):
        raise InvalidInput(
            (*loc, "weights"), f"'weights' names symbol(s) {strange} the policy does not trade"
        )
    windows = []
    for symbol in symbols:
        if request.assets is not None:
            one = ActRequest(bars=request.assets[symbol])
        else:
            one = ActRequest(features=request.asset_features[symbol])
        windows.append(request_features(policy, one, (*loc, field, symbol)))
    held = np.array([weights.get(symbol, 0.0) for symbol in symbols], dtype=np.float64)
    return policy.observe_assets(np.stack(windows, axis=1), held)


def request_state(policy: Policy, request: ActRequest, loc: Loc = ("body",)) -> State | None:
    """A recurrent policy's state of one request (its initial state when the request has none)."""
    if policy.recurrent is None:
        if request.state is not None:
            raise InvalidInput((*loc, "state"), "'state' is for recurrent policies; this one has none")
        return None
    if request.state is None:
        return {key: value[0] for key, value in policy.recurrent.initial(1).items()}
    try:
        return policy.recurrent.check(request.state)
    except ValueError as error:
        raise InvalidInput((*loc, "state"), str(error)) from error


def stacked(policy: Policy, states: Sequence[State | None]) -> State | None:
    """Per-request states of one policy as one ``[B, ...]`` batch (None for a feed-forward policy)."""
    if policy.recurrent is None:
        return None
    return {key: np.stack([state[key] for state in states]) for key in policy.recurrent.keys}  # type: ignore[index]


def decide_grouped(items: Sequence[tuple[Policy, np.ndarray, State | None]]) -> list[Decision]:
    """Decisions for ``(policy, observation [D], state)`` items, one network call per distinct policy.

    A batch can straddle a version switch: each observation is acted on by the policy that built it.
    """
    decisions: list[Decision | None] = [None] * len(items)
    groups: dict[int, list[int]] = {}
    for index, (policy, _, _) in enumerate(items):
        groups.setdefault(id(policy), []).append(index)
    for indices in groups.values():
        policy = items[indices[0]][0]
        batch = np.stack([items[i][1] for i in indices])
        state = stacked(policy, [items[i][2] for i in indices])
        for i, decision in zip(indices, policy.decide_batch(batch, state), strict=True):
            decisions[i] = decision
    return decisions  # type: ignore[return-value]
