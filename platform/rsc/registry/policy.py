"""A trained policy as served: the exported network, the feature spec and the fitted scaler.

Pure torch + numpy (no RLlib, no MLflow): the evaluation stage, the MLflow pyfunc model and the
Ray Serve replicas all act through this class, so they see exactly what training saw.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rsc.core.features import Bars, compute_features, warmup_bars
from rsc.core.policy_spec import PolicySpec
from rsc.core.schema import NETWORK_FILE, POLICY_FILE


@dataclass(frozen=True)
class Decision:
    action: int | float  # an index into positions (discrete) or the raw continuous action
    target_position: float


class Policy:
    """Acts on observations, on feature windows, or on raw bars, through its :class:`PolicySpec`."""

    def __init__(self, network: torch.jit.ScriptModule, spec: PolicySpec | Mapping[str, Any]):
        self.network = network.eval()
        self.spec = spec = (
            spec if isinstance(spec, PolicySpec) else PolicySpec.from_json(json.dumps(dict(spec)))
        )
        self.indicators = spec.refs
        self.feature_names = list(spec.observation.features)
        self.window = spec.observation.window
        self.positions = list(spec.action.positions)
        self.discrete = spec.action.kind == "discrete"

    @classmethod
    def load(cls, directory: str | Path) -> Policy:
        directory = Path(directory)
        spec = PolicySpec.from_json((directory / POLICY_FILE).read_text(), str(directory / POLICY_FILE))
        return cls(torch.jit.load(str(directory / NETWORK_FILE), map_location="cpu"), spec)

    @property
    def min_bars(self) -> int:
        """Bars a request must carry: the indicator warm-up plus the observation window."""
        return warmup_bars(self.indicators) + self.window

    def act(self, obs: np.ndarray) -> int | np.ndarray:
        """Greedy action for one observation ``[D]``: an index, or a ``[d]`` continuous action."""
        action = self.act_batch(np.asarray(obs, dtype=np.float32)[None])[0]
        return int(action) if self.discrete else action

    def act_batch(self, obs: np.ndarray) -> np.ndarray:
        """``[B, D]`` observations -> ``[B]`` action indices or ``[B, d]`` continuous actions."""
        with torch.no_grad():
            return self.network(torch.as_tensor(obs, dtype=torch.float32)).numpy()

    def target_position(self, action) -> float:
        """The position weight an action asks for (the contract's decoding, as in the env)."""
        return self.spec.action.decode(action)

    def observe_features(self, features: np.ndarray, position: float, unrealised: float = 0.0) -> np.ndarray:
        """``[W, F]`` raw (unscaled) features, oldest first -> observation."""
        return self.spec.observation.build(self.spec.scaler.apply(features), position, unrealised)

    def features_from_bars(self, bars: Bars) -> np.ndarray:
        """``[T]`` bars -> the last ``window`` rows of raw features ``[W, F]``."""
        return compute_features(bars, self.indicators)[-self.window :]

    def decision(self, action) -> Decision:
        """One greedy action (an index, or a ``[d]`` continuous action) as a :class:`Decision`."""
        return Decision(self.spec.action.raw(action), self.target_position(action))

    def decide(self, features: np.ndarray, position: float, unrealised: float = 0.0) -> Decision:
        return self.decision(self.act(self.observe_features(features, position, unrealised)))

    def decide_batch(self, obs: np.ndarray) -> list[Decision]:
        """``[B, D]`` observations -> one decision each, in one network call."""
        return [self.decision(action) for action in self.act_batch(obs)]
