"""The policy as an MLflow pyfunc model: bars window in, action and target position out.

Loading it needs mlflow, torch and ``rsc``'s numpy core, never Ray or RLlib.
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


def decide_on_bars(policy: Policy, bars: pd.DataFrame, position: float) -> pd.DataFrame:
    """The pyfunc contract: a window of OHLCV rows (oldest first) -> one row: action, target_position."""
    if len(bars) < policy.min_bars:
        raise ValueError(f"need at least {policy.min_bars} bars, got {len(bars)}")
    arrays = Bars.from_columns({c: bars[c].to_numpy(np.float64) for c in OHLCV_COLUMNS})
    decision = policy.decide(policy.features_from_bars(arrays), position)
    return pd.DataFrame({"action": [decision.action], "target_position": [decision.target_position]})


class PolicyModel(mlflow.pyfunc.PythonModel):
    """``predict(bars [T rows of OHLCV], params={"position": w})`` -> one row: action, target_position."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.policy = Policy.load(context.artifacts[POLICY_ARTIFACT])

    def predict(
        self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        return decide_on_bars(self.policy, model_input, float((params or {}).get("position", 0.0)))
