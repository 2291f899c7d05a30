"""A trained policy as served: the exported network, the feature spec and the fitted scaler.

Pure torch + numpy (no RLlib, no MLflow): the evaluation stage, the MLflow pyfunc model and the
Ray Serve replicas all act through this class, so they see exactly what training saw.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rsc.core import observation
from rsc.core.features import Bars, IndicatorRef, compute_features, feature_names, warmup_bars
from rsc.core.schema import NETWORK_FILE, POLICY_FILE


@dataclass(frozen=True)
class Decision:
    action: int | float  # an index into positions (discrete) or the raw continuous action
    target_position: float


class Policy:
    """Acts on observations, on feature windows, or on raw bars."""

    def __init__(self, network: torch.jit.ScriptModule, spec: dict[str, Any]):
        self.network = network.eval()
        self.spec = spec
        self.indicators = [IndicatorRef.from_dict(i) for i in spec["indicators"]]
        self.feature_names = feature_names(self.indicators)
        self.window = int(spec["window"])
        self.positions = [float(p) for p in spec["positions"]]
        env = spec.get("env", {})
        self.discrete = env.get("action", "discrete") == "discrete"
        self.max_position = float(env.get("max_position", 1.0))
        self._mean = np.asarray(spec["scaler"]["mean"], dtype=np.float64)
        self._std = np.asarray(spec["scaler"]["std"], dtype=np.float64)

    @classmethod
    def load(cls, directory: str | Path) -> Policy:
        directory = Path(directory)
        spec = json.loads((directory / POLICY_FILE).read_text())
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
        """The position weight an action asks for (the env's own decoding)."""
        if self.discrete:
            return self.positions[int(action)]
        return max(-self.max_position, min(self.max_position, float(np.ravel(action)[0]) * self.max_position))

    def observe_features(self, features: np.ndarray, position: float, unrealised: float = 0.0) -> np.ndarray:
        """``[W, F]`` raw (unscaled) features, oldest first -> observation."""
        scaled = observation.scale(features, self._mean, self._std).astype(np.float32)
        return observation.observe(scaled, len(scaled) - 1, self.window, position, unrealised)

    def features_from_bars(self, bars: Bars) -> np.ndarray:
        """``[T]`` bars -> the last ``window`` rows of raw features ``[W, F]``."""
        return compute_features(bars, self.indicators)[-self.window :]

    def decision(self, action) -> Decision:
        """One greedy action (an index, or a ``[d]`` continuous action) as a :class:`Decision`."""
        raw = int(action) if self.discrete else float(np.ravel(action)[0])
        return Decision(raw, self.target_position(action))

    def decide(self, features: np.ndarray, position: float, unrealised: float = 0.0) -> Decision:
        return self.decision(self.act(self.observe_features(features, position, unrealised)))

    def decide_batch(self, obs: np.ndarray) -> list[Decision]:
        """``[B, D]`` observations -> one decision each, in one network call."""
        return [self.decision(action) for action in self.act_batch(obs)]
