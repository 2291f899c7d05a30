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
from rsc.core.schema import DRIFT_REFERENCE_FILE, NETWORK_FILE, POLICY_FILE

State = dict[str, np.ndarray]  # a recurrent policy's state: key -> [B, *shape] (one sample: [*shape])


@dataclass(frozen=True)
class Decision:
    action: int | float | None  # an index into positions (discrete) or the raw continuous action
    target_position: float | None  # None for a portfolio policy: its answer is ``weights``
    state: State | None = None  # a recurrent policy's state after this bar (the caller sends it back)
    weights: dict[str, float] | None = None  # a portfolio policy's target weight per symbol


class Policy:
    """Acts on observations, on feature windows, or on raw bars, through its :class:`PolicySpec`.

    A recurrent policy (``spec.recurrent``) takes its state with each observation and gives the next
    one back; a caller without a state starts from the initial one.
    """

    def __init__(
        self,
        network: torch.jit.ScriptModule,
        spec: PolicySpec | Mapping[str, Any],
        drift_reference: np.ndarray | None = None,
    ):
        """``drift_reference``: ``[N, F]`` scaled training rows stored with the model (None: none)."""
        self.network = network.eval()
        self.drift_reference = drift_reference
        self.spec = spec = (
            spec if isinstance(spec, PolicySpec) else PolicySpec.from_json(json.dumps(dict(spec)))
        )
        self.indicators = spec.refs
        self.feature_names = list(spec.observation.features)
        self.window = spec.observation.window
        self.positions = list(spec.action.positions)
        self.discrete = spec.action.kind == "discrete"
        self.recurrent = spec.recurrent
        self.portfolio = spec.portfolio  # None: a single-asset policy
        self.universe = spec.universe  # the symbols it was trained across; None: one symbol

    @classmethod
    def load(cls, directory: str | Path) -> Policy:
        directory = Path(directory)
        spec = PolicySpec.from_json((directory / POLICY_FILE).read_text(), str(directory / POLICY_FILE))
        reference = None
        if (directory / DRIFT_REFERENCE_FILE).is_file():  # models stored before it have none
            stored = json.loads((directory / DRIFT_REFERENCE_FILE).read_text())
            if list(stored["features"]) == list(spec.observation.features):
                reference = np.asarray(stored["rows"], dtype=np.float64).reshape(-1, len(stored["features"]))
        return cls(torch.jit.load(str(directory / NETWORK_FILE), map_location="cpu"), spec, reference)

    @property
    def min_bars(self) -> int:
        """Bars a request must carry: the indicator warm-up plus the observation window."""
        return warmup_bars(self.indicators) + self.window

    def step_batch(self, obs: np.ndarray, state: State | None = None) -> tuple[np.ndarray, State | None]:
        """``[B, D]`` observations (and a recurrent policy's ``[B, ...]`` state; None = initial) ->
        ``[B]`` action indices or ``[B, d]`` continuous actions, and the next state."""
        batch = torch.as_tensor(np.asarray(obs, dtype=np.float32))
        with torch.no_grad():
            if self.recurrent is None:
                return self.network(batch).numpy(), None
            state = state if state is not None else self.recurrent.initial(len(batch))
            action, *out = self.network(batch, *(torch.as_tensor(state[k]) for k in self.recurrent.keys))
        return action.numpy(), {
            key: value.numpy() for key, value in zip(self.recurrent.keys, out, strict=True)
        }

    def act_batch(self, obs: np.ndarray) -> np.ndarray:
        """``[B, D]`` observations -> actions (a recurrent policy from its initial state)."""
        return self.step_batch(obs)[0]

    def act(self, obs: np.ndarray) -> int | np.ndarray:
        """Greedy action for one observation ``[D]``: an index, or a ``[d]`` continuous action."""
        action = self.act_batch(np.asarray(obs, dtype=np.float32)[None])[0]
        return int(action) if self.discrete else action

    def actor(self, symbol: str | None = None):
        """``observation [D] -> action`` that carries a recurrent policy's state from call to call (one
        actor per episode: the backtester's rollout). A policy trained across a universe acts on
        ``symbol``'s single-asset observations (its one-hot appended, when it has one)."""
        state: State | None = None
        code = self.universe.code(symbol) if self.universe is not None else None

        def act(obs: np.ndarray) -> int | np.ndarray:
            nonlocal state
            obs = np.asarray(obs, dtype=np.float32)
            if code is not None and len(code):
                obs = np.concatenate([obs, code])
            actions, state = self.step_batch(obs[None], state)
            return int(actions[0]) if self.discrete else actions[0]

        return act

    def target_position(self, action) -> float:
        """The position weight an action asks for (the contract's decoding, as in the env)."""
        return self.spec.action.decode(action)

    def observe_features(
        self, features: np.ndarray, position: float, unrealised: float = 0.0, symbol: str | None = None
    ) -> np.ndarray:
        """``[W, F]`` raw (unscaled) features, oldest first -> observation (for a policy trained across a
        universe, of ``symbol``: one it was trained on; named when it tells its symbols apart)."""
        obs = self.spec.observation.build(self.spec.scaler.apply(features), position, unrealised)
        if self.universe is None:
            return obs
        return np.concatenate([obs, self.universe.code(symbol)]).astype(np.float32)

    def features_from_bars(self, bars: Bars) -> np.ndarray:
        """``[T]`` bars -> the last ``window`` rows of raw features ``[W, F]``."""
        return compute_features(bars, self.indicators)[-self.window :]

    def weights_for(self, features: np.ndarray, weights: np.ndarray) -> dict[str, float]:
        """A portfolio policy's target weight per symbol from ``[W, N, F]`` raw features (symbols in the
        contract's order) and the ``[N]`` current weights."""
        if self.portfolio is None:
            raise ValueError("weights_for is for portfolio policies; this one trades a single asset")
        return self.portfolio.decode(self.act_batch(self.observe_assets(features, weights)[None])[0])

    def observe_assets(self, features: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """A portfolio policy's observation from ``[W, N, F]`` raw features and ``[N]`` current weights."""
        scaled = self.spec.scaler.apply(features)
        return self.portfolio.build(scaled[-self.window :], np.asarray(weights, dtype=np.float64))

    def decision(self, action, state: State | None = None) -> Decision:
        """One greedy action (an index, or a ``[d]`` continuous action) as a :class:`Decision`."""
        if self.portfolio is not None:
            return Decision(None, None, state, self.portfolio.decode(action))
        return Decision(self.spec.action.raw(action), self.target_position(action), state)

    def decide(
        self,
        features: np.ndarray,
        position: float,
        unrealised: float = 0.0,
        state: State | None = None,
        symbol: str | None = None,
    ) -> Decision:
        """One decision; ``state`` is a recurrent policy's state of one sample (None = initial)."""
        obs = self.observe_features(features, position, unrealised, symbol)
        return self.decide_batch(
            obs[None], None if state is None else {k: v[None] for k, v in state.items()}
        )[0]

    def decide_batch(self, obs: np.ndarray, state: State | None = None) -> list[Decision]:
        """``[B, D]`` observations (and ``[B, ...]`` states) -> one decision each, in one network call."""
        actions, out = self.step_batch(obs, state)
        return [
            self.decision(action, None if out is None else {k: v[i] for k, v in out.items()})
            for i, action in enumerate(actions)
        ]
