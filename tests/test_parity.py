"""Training/serving parity, the policy contract's test: the same bars replayed through the env and
through the served endpoint (real HTTP, Ray Serve) give identical observations and actions, bar by
bar, for every action kind; a changed observation slot on one side is caught."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import requests

from rsc.cluster.local import free_port
from rsc.core.schema import OHLCV_COLUMNS, SYMBOL, TEST, TIMESTAMP
from rsc.env.market import MarketArrays
from rsc.env.trading import TradingEnv
from rsc.registry.policy import Policy
from rsc.serve.deploy import deploy
from rsc.storage import Storage
from tests.conftest import smoke_settings
from tests.stored_run import register_policy_run, store_run

# Policy kind -> (settings overrides, recurrent): feed-forward discrete and continuous, and an LSTM.
KINDS = {"discrete": ((), False), "continuous": (("env.action=continuous",), False), "recurrent": ((), True)}
STEPS = 25


@pytest.fixture(scope="module")
def served(tmp_path_factory, ray_session):
    """One stored policy per action kind, registered and served by one app each."""
    from ray import serve

    port, apps = free_port(), {}
    for kind, (overrides, recurrent) in KINDS.items():
        cfg = smoke_settings(
            tmp_path_factory.mktemp(f"parity-{kind}"),
            "split.validation_end=2017-06-30",
            "data.symbols=[SYN]",
            "registry.min_deflated_sharpe=null",
            f"registry.model_name=parity-{kind}",
            f"serve.app_name=parity-{kind}",
            f"serve.route_prefix=/parity-{kind}",
            f"serve.port={port}",
            *overrides,
        )
        uris = store_run(cfg, recurrent=recurrent)
        model_uri, _ = register_policy_run(cfg, uris, 3, sharpe=1.0, recurrent=recurrent)
        url = deploy(cfg.serve, ray_session.address, cfg.tracking_uri, cfg.model_name, None)
        apps[kind] = (cfg, uris, model_uri, url)
    yield apps
    serve.shutdown()


def replay(cfg, uris, model_uri, url, perturb: Callable[[np.ndarray], np.ndarray] | None = None):
    """Step the env greedily through the test bars; at each bar ask the endpoint with the same bars and
    the env's position state (and a recurrent policy's state, as the endpoint handed it back). Returns
    (env observations, served observations, env targets, served targets)."""
    frame = Storage().read_dataset(uris["split"])
    frame = frame[frame[SYMBOL] == "SYN"].sort_values(TIMESTAMP).reset_index(drop=True)
    market = MarketArrays.from_frame(frame, Storage().read_json(uris["scaler"]), TEST, cfg.env.window)
    env = TradingEnv(market, cfg.env, mode="eval")
    policy = Policy.load(Storage().local_path(model_uri))
    obs, _ = env.reset()
    seen, served, acted, answered = [], [], [], []
    state, sent = None, None  # the policy's recurrent state on the env side, and as the endpoint returns it
    for _ in range(STEPS):
        # The env's observation as the policy sees it (``perturb``: a layout change on the env side only);
        # the request carries the book's position state, as the paper trader's does.
        shown = perturb(obs.copy()) if perturb else obs
        bars = frame[frame[TIMESTAMP] <= market.timestamps[env.t]]  # every bar up to the env's bar t
        payload = {
            "bars": [
                {TIMESTAMP: str(r[TIMESTAMP]), **{c: r[c] for c in OHLCV_COLUMNS}} for _, r in bars.iterrows()
            ],
            "position": float(obs[-2]),
            "unrealised_return": float(obs[-1]),
            "include_observation": True,
            **({"state": sent} if sent is not None else {}),
        }
        answer = requests.post(f"{url}/v1/act", json=payload, timeout=30)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        actions, state = policy.step_batch(shown[None], state)
        action = int(actions[0]) if policy.discrete else actions[0]
        sent = body.get("state")
        if policy.recurrent is not None:  # the state the endpoint hands back is the env side's, bar by bar
            assert sent is not None and np.abs(state["h"]).sum() > 0
            for key in policy.recurrent.keys:
                np.testing.assert_allclose(np.asarray(sent[key]), state[key][0], atol=1e-6)
        seen.append(shown)
        served.append(np.asarray(body["observation"], dtype=np.float32))
        acted.append(policy.spec.action.decode(action))
        answered.append(body["target_position"])
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            break
    return seen, served, acted, answered


def mismatches(seen, served) -> list[int]:
    return [i for i, (a, b) in enumerate(zip(seen, served, strict=True)) if not np.array_equal(a, b)]


@pytest.mark.parametrize("kind", KINDS)
def test_env_and_endpoint_see_the_same_observation_and_take_the_same_action(served, kind):
    seen, observed, acted, answered = replay(*served[kind])
    assert len(seen) == STEPS
    assert mismatches(seen, observed) == []
    assert acted == answered
    if kind == "continuous":
        assert len({round(a, 6) for a in acted}) > 1  # the policy does act


def test_a_changed_observation_slot_on_one_side_is_caught(served):
    """Swap the env's two position slots (a layout change on one side only): parity must fail."""

    def swapped(obs: np.ndarray) -> np.ndarray:
        obs[-2], obs[-1] = obs[-1], obs[-2]
        return obs

    seen, observed, _, _ = replay(*served["discrete"], perturb=lambda obs: obs)
    assert mismatches(seen, observed) == []
    frame_seen, frame_observed, _, _ = replay(*served["discrete"], perturb=swapped)
    held = [i for i, obs in enumerate(frame_seen) if obs[-1] != obs[-2]]
    assert held, "the replay never held a position, so the slots were never told apart"
    assert set(held) <= set(mismatches(frame_seen, frame_observed))
