"""The policy as an MLflow pyfunc model: bars window in, action and target position out.

Loading it needs mlflow, torch, numpy, pandas and the few ``rsc`` modules the model carries as its
code (``rsc.core``, ``rsc.registry.policy``, this module), never Ray or RLlib.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from rsc.core.features import Bars
from rsc.core.schema import OHLCV_COLUMNS
from rsc.registry.policy import Policy

POLICY_ARTIFACT = "policy_dir"
# Inference parameters of ``predict`` (part of the signature): the current position weight and the
# open position's unrealised return, as in the observation training saw.
DEFAULT_PARAMS: dict[str, float] = {"position": 0.0, "unrealised_return": 0.0}


def decide_on_bars(
    policy: Policy, bars: pd.DataFrame, position: float, unrealised_return: float = 0.0
) -> pd.DataFrame:
    """The pyfunc contract: a window of OHLCV rows (oldest first) -> one row: action, target_position."""
    if len(bars) < policy.min_bars:
        raise ValueError(f"need at least {policy.min_bars} bars, got {len(bars)}")
    missing = [c for c in OHLCV_COLUMNS if c not in bars.columns]
    if missing:
        raise ValueError(f"bars lack column(s) {missing}")
    arrays = Bars.from_columns({c: bars[c].to_numpy(np.float64) for c in OHLCV_COLUMNS})
    decision = policy.decide(policy.features_from_bars(arrays), position, unrealised_return)
    return pd.DataFrame({"action": [decision.action], "target_position": [decision.target_position]})


class PolicyModel(mlflow.pyfunc.PythonModel):
    """``predict(bars [T rows of OHLCV], params={"position": w, "unrealised_return": r})`` -> one row."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.policy = Policy.load(context.artifacts[POLICY_ARTIFACT])

    def predict(
        self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        values = {**DEFAULT_PARAMS, **(params or {})}
        return decide_on_bars(
            self.policy, model_input, float(values["position"]), float(values["unrealised_return"])
        )
