"""The policy contract: its serialisation, the version 1 converter, and refusals that name the problem."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rsc.core.features import IndicatorRef
from rsc.core.policy_spec import SCHEMA_VERSION, ActionSpec, PolicySpec, PolicySpecError

REFS = [IndicatorRef.of("log_return", 1), IndicatorRef.of("rsi", 14)]
ENV = {
    "window": 3,
    "action": "discrete",
    "positions": [-1.0, 0.0, 1.0],
    "max_position": 0.5,
    "fill": "next_close",
}
SCALER = {"columns": ["log_return_1", "rsi_14"], "mean": [0.0, 0.5], "std": [0.01, 0.1]}


def spec() -> PolicySpec:
    return PolicySpec.for_env(ENV, REFS, SCALER, algorithm="PPO", best_iteration=4)


def test_round_trip_and_layout():
    original = spec()
    again = PolicySpec.from_json(original.to_json())
    assert again == original and again.schema_version == SCHEMA_VERSION
    assert again.observation.size == 3 * 2 + 2 and again.costs.fill == "next_close"
    raw = np.array([[0.01, 0.6], [0.0, 0.5], [-0.01, 0.4], [0.02, 0.7]])
    obs = again.observation.build(again.scaler.apply(raw), 0.25, -0.1)
    assert obs.dtype == np.float32 and obs.shape == (8,)
    np.testing.assert_allclose(
        obs[:6], [0.0, 0.0, -1.0, -1.0, 2.0, 2.0], atol=1e-6
    )  # the last 3 rows, scaled
    assert obs[-2:].tolist() == pytest.approx([0.25, -0.1])


def test_actions_decode_within_the_limits():
    discrete = spec().action
    assert (
        discrete.targets == (-0.5, 0.0, 0.5) and discrete.decode(2) == 0.5 and discrete.raw(np.int64(0)) == 0
    )
    continuous = ActionSpec(kind="continuous", max_position=0.5)
    assert continuous.decode(np.array([0.5])) == 0.25 and continuous.decode(np.array([3.0])) == 0.5


def test_a_version_1_policy_json_is_read_as_version_2():
    v1 = {
        "algorithm": "PPO",
        "indicators": [r.to_dict() for r in REFS],
        "feature_names": ["log_return_1", "rsi_14"],
        "window": 3,
        "positions": [-1.0, 0.0, 1.0],
        "observation_size": 8,
        "scaler": {**SCALER, "inputs": {"features": "abc"}},
        "env": ENV,
        "best_iteration": 4,
        "validation": {},
        "inputs": {"split": "def"},
    }
    upgraded = PolicySpec.from_json(json.dumps(v1))
    assert upgraded.model_dump(exclude={"inputs"}) == spec().model_dump(exclude={"inputs"})
    assert upgraded.inputs == {"split": "def"}


def test_a_newer_version_and_a_broken_file_are_refused_with_the_reason():
    newer = json.loads(spec().to_json()) | {"schema_version": 99}
    with pytest.raises(PolicySpecError, match="schema_version 99 is not readable"):
        PolicySpec.from_json(json.dumps(newer), "models/x/policy.json")
    shuffled = json.loads(spec().to_json())
    shuffled["scaler"]["columns"] = ["rsi_14", "log_return_1"]
    with pytest.raises(PolicySpecError, match="feature order differs"):
        PolicySpec.from_json(json.dumps(shuffled))
    with pytest.raises(PolicySpecError, match=r"policy\.json: not JSON"):
        PolicySpec.from_json("{")
