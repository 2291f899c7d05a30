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
from rsc.core.schema import OHLCV_COLUMNS
from rsc.registry.policy import Policy

POLICY_ARTIFACT = "policy_dir"
# Inference parameters of ``predict`` (part of the signature): the current position weight and the
# open position's unrealised return, as in the observation training saw, and a recurrent policy's state
# after the previous bar as JSON ("" = the initial state).
DEFAULT_PARAMS: dict[str, Any] = {"position": 0.0, "unrealised_return": 0.0, "state": ""}


def decide_on_bars(
    policy: Policy, bars: pd.DataFrame, position: float, unrealised_return: float = 0.0, state: str = ""
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
    decision = policy.decide(policy.features_from_bars(arrays), position, unrealised_return, carried)
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
        values = {**DEFAULT_PARAMS, **(params or {})}
        return decide_on_bars(
            self.policy,
            model_input,
            float(values["position"]),
            float(values["unrealised_return"]),
            str(values["state"] or ""),
        )
