"""The policy as an MLflow pyfunc model: bars window in, action and target position out.

Loading it needs mlflow, torch, numpy, pandas and the few ``rsc`` modules the model carries as its
code (``rsc.core``, ``rsc.registry.policy``, this module), never Ray or RLlib.
"""

from __future__ import annotations

import json
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from rsc.core.features import Bars
from rsc.core.schema import OHLCV_COLUMNS, SYMBOL, TIMESTAMP
from rsc.registry.policy import Policy

POLICY_ARTIFACT = "policy_dir"
# Inference parameters of ``predict`` (part of the signature): the current position weight and the
# open position's unrealised return, as in the observation training saw, a recurrent policy's state
# after the previous bar as JSON ("" = the initial state), and the symbol the bars are of (a policy
# trained across a universe that tells its symbols apart needs it; "" = not named).
DEFAULT_PARAMS: dict[str, Any] = {"position": 0.0, "unrealised_return": 0.0, "state": "", "symbol": ""}
# A portfolio policy's parameter: the current weights as JSON {symbol: weight} ("" = all in cash).
PORTFOLIO_PARAMS: dict[str, Any] = {"weights": ""}


def params_of(policy: Policy) -> dict[str, Any]:
    """The inference parameters of ``policy``'s kind and their defaults (part of its signature)."""
    return dict(PORTFOLIO_PARAMS if policy.portfolio is not None else DEFAULT_PARAMS)


def example_params(policy: Policy) -> dict[str, Any]:
    """Parameters of the registered input example: the defaults, with a symbol the policy trades."""
    symbol = {"symbol": policy.universe.symbols[0]} if policy.universe is not None else {}
    return {**params_of(policy), **symbol}


def decide_weights_on_bars(policy: Policy, bars: pd.DataFrame, weights: str = "") -> pd.DataFrame:
    """The portfolio pyfunc contract: bars of every symbol (long: ``symbol``, ``timestamp``, OHLCV, each
    symbol's latest bars up to the same decision time) -> one row per symbol: its target weight.

    Each symbol's indicators are computed on its own bars, as training computed them before aligning
    and as the endpoint and the paper trader compute them."""
    symbols = policy.portfolio.symbols
    missing = [c for c in (SYMBOL, TIMESTAMP, *OHLCV_COLUMNS) if c not in bars.columns]
    if missing:
        raise ValueError(f"portfolio bars lack column(s) {missing}")
    absent = sorted(set(symbols) - set(bars[SYMBOL]))
    if absent:
        raise ValueError(
            f"portfolio bars lack symbol(s) {absent}; the policy allocates across {list(symbols)}"
        )
    rows = bars[bars[SYMBOL].isin(symbols)]
    short = {s: n for s, n in rows.groupby(SYMBOL)[TIMESTAMP].size().items() if n < policy.min_bars}
    if short:
        raise ValueError(f"need at least {policy.min_bars} bars of each symbol; short: {short}")
    current = json.loads(weights) if weights else {}
    unknown = sorted(set(current) - set(symbols))
    if unknown:
        raise ValueError(f"weights name symbol(s) {unknown} the policy does not trade ({list(symbols)})")
    features = []
    for symbol in symbols:
        own = rows[rows[SYMBOL] == symbol].sort_values(TIMESTAMP)
        arrays = Bars.from_columns({c: own[c].to_numpy(np.float64) for c in OHLCV_COLUMNS})
        features.append(policy.features_from_bars(arrays))
    held = np.array([float(current.get(s, 0.0)) for s in symbols])
    target = policy.weights_for(np.stack(features, axis=1), held)
    return pd.DataFrame({SYMBOL: list(target), "target_weight": list(target.values())})


def decide_on_bars(
    policy: Policy,
    bars: pd.DataFrame,
    position: float,
    unrealised_return: float = 0.0,
    state: str = "",
    symbol: str = "",
) -> pd.DataFrame:
    """The pyfunc contract: a window of OHLCV rows (oldest first) -> one row: action, target_position
    and, for a recurrent policy, the next state as JSON (``state`` column)."""
    if len(bars) < policy.min_bars:
        raise ValueError(f"need at least {policy.min_bars} bars, got {len(bars)}")
    missing = [c for c in OHLCV_COLUMNS if c not in bars.columns]
    if missing:
        raise ValueError(f"bars lack column(s) {missing}")
    carried = None
    if state:
        if policy.recurrent is None:
            raise ValueError("'state' is for recurrent policies; this one has none")
        carried = policy.recurrent.check(json.loads(state))
    arrays = Bars.from_columns({c: bars[c].to_numpy(np.float64) for c in OHLCV_COLUMNS})
    decision = policy.decide(
        policy.features_from_bars(arrays), position, unrealised_return, carried, symbol or None
    )
    row = {"action": [decision.action], "target_position": [decision.target_position]}
    if decision.state is not None:
        row["state"] = [json.dumps({k: v.tolist() for k, v in decision.state.items()})]
    return pd.DataFrame(row)


class PolicyModel(mlflow.pyfunc.PythonModel):
    """``predict(bars [T rows of OHLCV], params={"position": w, "unrealised_return": r})`` -> one row."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.policy = Policy.load(context.artifacts[POLICY_ARTIFACT])

    def predict(
        self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        if self.policy.portfolio is not None:
            return decide_weights_on_bars(self.policy, model_input, str((params or {}).get("weights") or ""))
        values = {**DEFAULT_PARAMS, **(params or {})}
        return decide_on_bars(
            self.policy,
            model_input,
            float(values["position"]),
            float(values["unrealised_return"]),
            str(values["state"] or ""),
            str(values.get("symbol") or ""),
        )
