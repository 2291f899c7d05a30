"""One single-asset policy trained across a universe: episodes per symbol, the symbol one-hot, serving
for any trained symbol, and the stages from bars to per-symbol test results."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from rsc.config.settings import EnvSettings
from rsc.core.policy_spec import PolicySpec
from rsc.core.schema import SYMBOL
from rsc.env import MarketArrays
from rsc.env.universe import UniverseEnv
from rsc.registry.policy import Policy
from rsc.serve.api import ActRequest
from rsc.serve.inference import InvalidInput, observation
from tests.conftest import smoke_settings
from tests.helpers import panel_frame, synthetic_bars

SYMBOLS = ("AAA", "BBB", "CCC")


def _universe(embedding: bool, mode: str = "train") -> UniverseEnv:
    frame, scaler = panel_frame(150, symbols=SYMBOLS, n_features=2)
    markets = {s: MarketArrays.from_frame(rows, scaler, "test", 5) for s, rows in frame.groupby(SYMBOL)}
    settings = EnvSettings(window=5, episode_length=20, symbol_embedding=embedding)
    return UniverseEnv(markets, settings, mode=mode)


def test_episodes_sample_every_symbol_and_the_observation_says_which_only_when_asked():
    plain, embedded = _universe(False), _universe(True)
    assert embedded.observation_space.shape[0] == plain.observation_space.shape[0] + len(SYMBOLS)
    seen = set()
    for seed in range(30):
        obs, info = embedded.reset(seed=seed)
        seen.add(info["symbol"])
        assert embedded.observation_space.contains(obs)
        np.testing.assert_array_equal(obs[-3:], np.eye(3)[SYMBOLS.index(info["symbol"])])
        obs, *_ = embedded.step(embedded.action_space.sample())
        np.testing.assert_array_equal(obs[-3:], np.eye(3)[SYMBOLS.index(info["symbol"])])
    assert seen == set(SYMBOLS)
    obs, info = plain.reset(seed=0, options={"symbol": "BBB"})
    assert info["symbol"] == "BBB" and obs.shape == plain.observation_space.shape
    with pytest.raises(ValueError, match="unknown symbol 'ZZZ'"):
        plain.reset(options={"symbol": "ZZZ"})


class _Linear(torch.nn.Module):
    def __init__(self, size: int):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.linspace(-1, 1, size * 2).reshape(size, 2) * 0.1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.argmax(obs @ self.weight, dim=1)


def _policy(embedding: bool) -> Policy:
    spec = PolicySpec.model_validate(
        {
            "algorithm": "PPO",
            "indicators": [{"name": "log_return", "window": 1}, {"name": "log_return", "window": 5}],
            "scaler": {"columns": ["log_return_1", "log_return_5"], "mean": [0.0, 0.0], "std": [0.01, 0.02]},
            "observation": {"window": 5, "features": ["log_return_1", "log_return_5"]},
            "action": {"kind": "discrete", "positions": [0.0, 1.0]},
            "universe": {"symbols": list(SYMBOLS), "embedding": embedding},
        }
    )
    network = torch.jit.trace(_Linear(spec.observation_size), torch.zeros(2, spec.observation_size))
    return Policy(network, spec)


def test_requests_name_a_trained_symbol_and_get_the_envs_observation():
    policy = _policy(embedding=True)
    window = np.random.default_rng(0).normal(0, 0.01, size=(5, 2))
    with pytest.raises(InvalidInput, match="name one of"):
        observation(policy, ActRequest(features=window.tolist()))
    with pytest.raises(InvalidInput, match="not one this policy was trained on"):
        observation(policy, ActRequest(features=window.tolist(), symbol="ZZZ"))
    served = observation(policy, ActRequest(features=window.tolist(), symbol="CCC", position=1.0))
    env = _universe(True)
    scaled = policy.spec.scaler.apply(window)
    single = policy.spec.observation.build(scaled, 1.0, 0.0)
    np.testing.assert_array_equal(served, env.observe("CCC", single))
    plain = _policy(embedding=False)  # no one-hot: any trained symbol, or none
    assert observation(plain, ActRequest(features=window.tolist())).shape == (plain.spec.observation_size,)
    with pytest.raises(InvalidInput, match="not one this policy was trained on"):
        observation(plain, ActRequest(features=window.tolist(), symbol="ZZZ"))


@pytest.mark.slow
def test_one_policy_across_three_symbols_reports_each_symbol(tmp_path, ray_session):
    """Three bundled stocks, one single-asset policy with the symbol one-hot: trained on episodes of
    every symbol, evaluated on each symbol's test period, registered, answering for a named symbol."""
    import mlflow

    from rsc.stages import evaluate, features, ingest, register, split, train

    cfg = smoke_settings(
        tmp_path,
        "data.symbols=[KO,PG,XOM]",
        "env.fill=next_close",
        "env.symbol_embedding=true",
        "tune.enabled=false",
        "run.name=universe",
        f"ray.address={ray_session.address}",
    )
    split_result = split.run(cfg, features.run(cfg, ingest.run(cfg).bars_uri).features_uri)
    trained = train.run(cfg, split_result.split_uri, split_result.scaler_uri)
    contract = PolicySpec.from_json((tmp_path / "universe" / "model" / "policy.json").read_text())
    assert contract.universe.symbols == ("KO", "PG", "XOM") and contract.universe.embedding
    assert contract.observation_size == contract.observation.size + 3
    evaluated = evaluate.run(cfg, split_result.split_uri, split_result.scaler_uri, trained.model_uri)
    results = json.loads((tmp_path / "universe" / "evaluation" / "metrics.json").read_text())
    per_symbol = results["universe"]["symbols"]
    assert sorted(per_symbol) == ["KO", "PG", "XOM"]
    sharpes = [per_symbol[s]["policy"]["sharpe"] for s in per_symbol]
    aggregate = results["universe"]["policy_sharpe"]
    assert (
        aggregate["median"] == pytest.approx(np.median(sharpes)) == pytest.approx(results["policy"]["sharpe"])
    )
    assert aggregate["worst"] == min(sharpes) and aggregate["mean"] == pytest.approx(np.mean(sharpes))
    beat = np.mean(
        [per_symbol[s]["policy"]["sharpe"] > per_symbol[s]["buy_and_hold"]["sharpe"] for s in per_symbol]
    )
    assert results["universe"]["share_beating_buy_and_hold"] == beat
    assert "median" in results["notes"]["universe"]
    report = (tmp_path / "universe" / "evaluation" / "report.html").read_text()
    assert all(f"<td>{s}</td>" in report for s in per_symbol) and "beats buy &amp; hold" in report
    registered = register.run(
        cfg, split_result.split_uri, trained.model_uri, evaluated.metrics_uri, evaluated.report_uri
    )
    assert registered.model_name == "rsc-universe-ko_pg_xom-1d"
    mlflow.set_tracking_uri(cfg.tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{registered.model_name}/1")
    bars = synthetic_bars(80, seed=3).drop(columns=[SYMBOL])
    answers = [model.predict(bars, params={"symbol": s})["target_position"][0] for s in ("KO", "PG", "XOM")]
    assert all(a in (0.0, 1.0) for a in answers)
    with pytest.raises(Exception, match="name one of"):
        model.predict(bars)
    assert isinstance(bars, pd.DataFrame)
