"""Portfolio policies: settings, calendar alignment, valid weights, the policy contract's parity for
portfolios (env = backtester = served answer), and the stages from bars to a registered weight model."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rsc.config import ConfigError, load_settings
from rsc.config.loader import override_settings
from rsc.config.settings import EnvSettings
from rsc.core import execution
from rsc.core.policy_spec import PolicySpec, PortfolioSpec
from rsc.core.schema import CLOSE, OPEN, PART, SYMBOL, TIMESTAMP, TRADABLE
from rsc.data.align import align_symbols
from rsc.env import PanelArrays, PortfolioEnv
from rsc.evaluate.portfolio import backtest_portfolio_policy
from rsc.registry.policy import Policy
from rsc.serve.api import ActRequest
from rsc.serve.inference import InvalidInput, observation
from tests.conftest import CONFIGS, smoke_settings
from tests.helpers import panel_frame, synthetic_bars

# -- settings ---------------------------------------------------------------------------------------


def test_env_kind_is_checked():
    with pytest.raises(ConfigError, match=r"env\.kind"):
        load_settings([], ["env.kind=basket"])
    with pytest.raises(ConfigError, match="two or more symbols"):
        load_settings([], ["env.kind=portfolio", "data.symbols=[SPX]"])
    assert load_settings([], ["env.kind=portfolio", "data.symbols=[SPX,GOOG]"]).env.kind == "portfolio"


def test_portfolio_lineage_is_its_own():
    single = load_settings([], ["data.symbols=[SPX,GOOG]"])
    portfolio = load_settings([], ["data.symbols=[SPX,GOOG]", "env.kind=portfolio"])
    assert single.model_name == "rsc-demo-goog_spx-1d"
    assert portfolio.model_name == "rsc-demo-portfolio-goog_spx-1d"
    overlay = load_settings([CONFIGS / "base.yaml", CONFIGS / "local.yaml", CONFIGS / "portfolio.yaml"])
    assert overlay.model_name.startswith("rsc-alloc-portfolio-10sym-") and overlay.env.fill == "next_close"


def test_discrete_and_recurrent_algorithms_are_refused_for_portfolios():
    from rsc.rl.plan import resolve_plan

    portfolio = ["env.kind=portfolio", "data.symbols=[SPX,GOOG]"]
    with pytest.raises(ConfigError, match=r"DQN.*continuous"):
        resolve_plan(load_settings([], [*portfolio, "train.algorithm_config=rllib_configs/dqn.yaml"]))
    with pytest.raises(ConfigError, match="recurrent"):
        resolve_plan(
            load_settings([], [*portfolio, "train.algorithm_config=rllib_configs/ppo_lstm_smoke.yaml"])
        )


# -- alignment --------------------------------------------------------------------------------------


def _calendars() -> pd.DataFrame:
    """An equity on weekdays from 2021-01-04 and a 24/7 crypto series from 2020-12-28."""
    equity = synthetic_bars(60, seed=1, symbol="EQ")
    equity[TIMESTAMP] = pd.bdate_range("2021-01-04", periods=60)
    crypto = synthetic_bars(90, seed=2, symbol="BTC")
    crypto[TIMESTAMP] = pd.date_range("2020-12-28", periods=90, freq="D")
    frame = pd.concat([equity, crypto], ignore_index=True)
    frame["f0"] = np.arange(len(frame), dtype=float)
    return frame


def test_intersection_keeps_the_bars_every_symbol_has():
    frame = _calendars()
    aligned, report = align_symbols(frame, "intersection")
    stamps = aligned[TIMESTAMP].unique()
    assert len(stamps) == report.bars == 60  # every equity bar lies inside the crypto's days
    assert report.symbols["EQ"].dropped == 0 and report.symbols["BTC"].dropped == 30
    assert aligned[TRADABLE].all() and (aligned.groupby(TIMESTAMP)[SYMBOL].nunique() == 2).all()


def test_union_forward_fills_untradeable_bars_from_the_latest_start():
    frame = _calendars()
    aligned, report = align_symbols(frame, "union")
    assert report.start == str(pd.Timestamp("2021-01-04"))  # the equity's first bar
    equity = aligned[aligned[SYMBOL] == "EQ"].set_index(TIMESTAMP)
    weekend = equity.loc[pd.Timestamp("2021-01-09")]  # a Saturday: no equity bar
    friday = frame[(frame[SYMBOL] == "EQ") & (frame[TIMESTAMP] == pd.Timestamp("2021-01-08"))].iloc[0]
    assert not weekend[TRADABLE] and weekend[CLOSE] == weekend[OPEN] == friday[CLOSE]
    assert weekend["f0"] == friday["f0"] and weekend["volume"] == 0.0
    assert report.symbols["EQ"].filled == int((~equity[TRADABLE]).sum()) > 0
    assert report.symbols["BTC"].dropped == 7 and report.symbols["BTC"].filled == 0
    with pytest.raises(ValueError, match=r"data\.align"):
        align_symbols(frame, "outer")


def test_untradeable_bars_keep_their_units_in_env_and_backtester():
    frame, _ = _union_panel()
    scaler = {"columns": ["f0"], "mean": [0.0], "std": [1.0]}
    market = PanelArrays.from_frame(frame, scaler, "test", 3)
    assert market.tradable is not None and not market.tradable.all()
    env = PortfolioEnv(market, EnvSettings(kind="portfolio", window=3, fill="next_close"), mode="eval")
    rng = np.random.default_rng(3)
    result = backtest_portfolio_policy(env, lambda obs: rng.uniform(size=3))  # parity checked inside
    units, tradable = result.run.units, market.tradable[-len(result.run.units) :]
    held = ~tradable[1:]
    assert held.any()
    assert np.array_equal(units[1:][held], units[:-1][held])  # no order on a bar the symbol did not trade


def _union_panel() -> tuple[pd.DataFrame, object]:
    frame, report = align_symbols(_calendars(), "union")
    frame[PART] = "test"
    return frame, report


# -- weights ----------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    scores=arrays(np.float64, st.integers(3, 40), elements=st.floats(-5, 5) | st.just(np.nan)),
    max_position=st.floats(0.05, 1.0),
    max_leverage=st.floats(0.1, 2.0),
)
def test_weights_are_valid_for_any_scores(scores, max_position, max_leverage):
    weights = np.asarray(execution.normalise_weights(scores, max_position, max_leverage))
    assert len(weights) == len(scores) - 1
    assert (weights >= 0).all() and (weights <= max_position + 1e-12).all()
    assert weights.sum() <= max_leverage + 1e-9


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), max_leverage=st.floats(0.2, 1.0), n_assets=st.sampled_from([3, 30]))
def test_env_weights_stay_within_limits_under_random_actions(seed, max_leverage, n_assets):
    symbols = tuple(f"S{i:02d}" for i in range(n_assets))
    frame, scaler = panel_frame(80, symbols=symbols, seed=seed % 7)
    env_settings = EnvSettings(kind="portfolio", window=3, max_position=0.5, max_leverage=max_leverage)
    env = PortfolioEnv(PanelArrays.from_frame(frame, scaler, "test", 3), env_settings, mode="eval")
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(30):
        obs, _, terminated, truncated, info = env.step(rng.uniform(-1, 2, size=n_assets + 1))
        target, held = info["weights"], obs[-n_assets:]
        assert (target >= 0).all() and target.sum() <= max_leverage + 1e-9
        assert (held >= 0).all() and held.sum() <= max_leverage * 1.1  # marked weights drift with prices
        if terminated or truncated:
            break


def test_vector_fill_equals_the_per_asset_fill():
    rng = np.random.default_rng(0)
    n = execution.VECTOR_ASSETS + 6
    units, prices, rates = rng.uniform(0, 50, n), rng.uniform(10, 100, n), rng.uniform(0, 1e-3, n)
    weights = execution.normalise_weights(rng.uniform(size=n + 1), 0.2, 1.0)
    tradable = rng.uniform(size=n) > 0.2
    cash, after, cost = execution.fill_weights(5_000.0, units, weights, prices, rates, tradable)
    assert isinstance(after, np.ndarray)
    value = 5_000.0 + float(units @ prices)
    expected_cash, expected_cost = 5_000.0, 0.0
    for i in range(n):
        if not tradable[i]:
            assert after[i] == units[i]
            continue
        expected_cash, held, _, paid = execution.fill(
            expected_cash, units[i], 0.0, weights[i] * value / prices[i], prices[i], rates[i]
        )
        assert after[i] == pytest.approx(held, rel=1e-12)
        expected_cost += paid
    assert cash == pytest.approx(expected_cash, rel=1e-12) and cost == pytest.approx(expected_cost, rel=1e-12)


# -- the contract's parity for portfolios -------------------------------------------------------------


class _Scores(torch.nn.Module):
    """A fixed random network: observation -> N + 1 scores."""

    def __init__(self, size: int, n_out: int):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.weight = torch.nn.Parameter(torch.randn(size, n_out, generator=generator) * 0.05)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(obs @ self.weight)


def _portfolio_policy(frame: pd.DataFrame, scaler: dict, window: int, env: EnvSettings) -> Policy:
    symbols = tuple(sorted(frame[SYMBOL].unique()))
    portfolio = PortfolioSpec(symbols=symbols, max_position=env.max_position, max_leverage=env.max_leverage)
    spec = PolicySpec.model_validate(
        {
            "algorithm": "PPO",
            "indicators": [{"name": "log_return", "window": 1}],
            "scaler": {"columns": ["log_return_1"], "mean": scaler["mean"], "std": scaler["std"]},
            "observation": {"window": window, "features": ["log_return_1"]},
            "action": {"kind": "continuous"},
            "env": env.model_dump(mode="json"),
            "portfolio": portfolio.model_dump(),
        }
    )
    network = torch.jit.trace(
        _Scores(spec.observation_size, len(symbols) + 1), torch.zeros(2, spec.observation_size)
    )
    return Policy(network, spec)


def test_served_weights_equal_the_env_and_the_backtester():
    """For the same bars: the served observation is the env's, its weights the env's, and the replay
    through the backtester reproduces the env's equity (checked inside backtest_portfolio_policy)."""
    frame, _ = panel_frame(120, symbols=("AAA", "BBB", "CCC"), n_features=1)
    frame["log_return_1"] = frame.groupby(SYMBOL)[CLOSE].transform(lambda c: np.log(c).diff()).fillna(0.0)
    scaler = {"columns": ["log_return_1"], "mean": [0.001], "std": [0.02]}
    env_settings = EnvSettings(kind="portfolio", window=5, max_position=0.6, max_leverage=0.9)
    policy = _portfolio_policy(frame, scaler, 5, env_settings)
    market = PanelArrays.from_frame(frame, scaler, "test", 5)
    env = PortfolioEnv(market, env_settings, mode="eval")
    seen: list[tuple[np.ndarray, np.ndarray]] = []
    act = policy.actor()

    def recorded(obs: np.ndarray) -> np.ndarray:
        action = act(obs)
        seen.append((obs.copy(), action))
        return action

    result = backtest_portfolio_policy(env, recorded)
    raw = frame.sort_values([TIMESTAMP, SYMBOL])
    stamps = np.sort(raw[TIMESTAMP].unique())
    for step in (0, 17, len(seen) - 1):
        t = market.first + step
        window = stamps[t - 4 : t + 1]
        rows = raw[raw[TIMESTAMP].isin(window)]
        held = result.weights[step]
        request = ActRequest(
            asset_features={
                s: rows[rows[SYMBOL] == s][["log_return_1"]].to_numpy().tolist() for s in market.symbols
            },
            weights=dict(zip(market.symbols, held.tolist(), strict=True)),
        )
        served = observation(policy, request)
        np.testing.assert_allclose(served, seen[step][0], rtol=0, atol=1e-6)
        decision = policy.decide_batch(served[None])[0]
        assert list(decision.weights) == list(market.symbols)
        np.testing.assert_allclose(list(decision.weights.values()), result.decisions[step], atol=1e-6)


def test_portfolio_requests_name_what_is_wrong():
    frame, _ = panel_frame(60, symbols=("AAA", "BBB"), n_features=1)
    env_settings = EnvSettings(kind="portfolio", window=3)
    policy = _portfolio_policy(frame, {"mean": [0.0], "std": [1.0]}, 3, env_settings)
    window = [[0.0]] * 3
    with pytest.raises(InvalidInput, match=r"missing \['BBB'\]"):
        observation(policy, ActRequest(asset_features={"AAA": window}))
    with pytest.raises(InvalidInput, match="does not trade"):
        observation(policy, ActRequest(asset_features={"AAA": window, "BBB": window}, weights={"ZZZ": 0.1}))
    with pytest.raises(InvalidInput, match="send 'assets'"):
        observation(policy, ActRequest(features=window))
    with pytest.raises(ValueError, match="exactly one of"):
        ActRequest(features=window, asset_features={"AAA": window})


# -- stages ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_portfolio_stages_from_bars_to_a_registered_weight_model(tmp_path, ray_session):
    """Misaligned calendars (SPX from 1999, GOOG from 2004, aligned by union) through split, train,
    evaluate and register; the registered pyfunc answers a weight per symbol."""
    import mlflow

    from rsc.stages import evaluate, features, ingest, register, split, train

    cfg = smoke_settings(
        tmp_path,
        "env.kind=portfolio",
        "data.symbols=[GOOG,SPX]",
        "data.start=2003-06-01",
        "data.end=2013-12-31",
        "data.align=union",
        "split.train_end=2010-12-31",
        "split.validation_end=2011-12-31",
        "tune.enabled=false",
        "run.name=alloc",
        f"ray.address={ray_session.address}",
    )
    bars = ingest.run(cfg)
    split_result = split.run(cfg, features.run(cfg, bars.bars_uri).features_uri)
    manifest = json.loads((tmp_path / "alloc" / "split" / "manifest.json").read_text())
    alignment = manifest["alignment"]
    assert alignment["policy"] == "union"
    assert alignment["start"][:7] in ("2004-08", "2004-09", "2004-10")  # GOOG's listing (and warm-up)
    assert alignment["symbols"]["SPX"]["dropped"] > 250  # its bars before GOOG existed
    trained = train.run(cfg, split_result.split_uri, split_result.scaler_uri)
    contract = PolicySpec.from_json((tmp_path / "alloc" / "model" / "policy.json").read_text())
    assert contract.portfolio.symbols == ("GOOG", "SPX")
    evaluated = evaluate.run(cfg, split_result.split_uri, split_result.scaler_uri, trained.model_uri)
    results = json.loads((tmp_path / "alloc" / "evaluation" / "metrics.json").read_text())
    for strategy in ("policy", "equal_weight", "min_variance", "inverse_volatility", "buy_and_hold_GOOG"):
        assert np.isfinite(results[strategy]["sharpe"]), strategy
    portfolio = results["portfolio"]
    assert portfolio["symbols"] == ["GOOG", "SPX"] and portfolio["alignment"]["policy"] == "union"
    total = results["policy"]["total_return"]
    costs = results["policy"]["costs"] / cfg.env.initial_cash
    assert sum(portfolio["contribution"].values()) - costs == pytest.approx(total, abs=1e-9)
    report = (tmp_path / "alloc" / "evaluation" / "report.html").read_text()
    assert 'data-figure="weights"' in report and "equal weight" in report
    sac = override_settings(
        cfg, ["run.name=alloc-sac", "train.algorithm_config=rllib_configs/sac_smoke.yaml"]
    )
    sac_model = train.run(sac, split_result.split_uri, split_result.scaler_uri).model_uri
    sac_results = evaluate.run(sac, split_result.split_uri, split_result.scaler_uri, sac_model).metrics
    assert np.isfinite(sac_results["policy"]["sharpe"])  # SAC's squashed actions trade through the same env
    registered = register.run(
        cfg, split_result.split_uri, trained.model_uri, evaluated.metrics_uri, evaluated.report_uri
    )
    assert registered.model_name == "rsc-alloc-portfolio-goog_spx-1d" and registered.promoted
    mlflow.set_tracking_uri(cfg.tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{registered.model_name}/1")
    frame = pd.concat(
        [synthetic_bars(80, seed=i, symbol=s) for i, s in enumerate(("GOOG", "SPX"))], ignore_index=True
    )
    answer = model.predict(frame, params={"weights": json.dumps({"SPX": 0.5})})
    assert list(answer[SYMBOL]) == ["GOOG", "SPX"]
    assert (answer["target_weight"] >= 0).all() and answer["target_weight"].sum() <= 1.0 + 1e-9


def test_the_drawdown_kill_switch_is_replayed_as_the_env_ran_it():
    """The env sells everything at the close that breached env.max_drawdown and ends the episode; the
    backtester's replay does the same, so the two equities agree (checked inside) with costs on."""
    frame, scaler = panel_frame(200, symbols=("AAA", "BBB", "CCC"), seed=2)
    settings = EnvSettings(kind="portfolio", window=3, max_drawdown=0.02, commission_bps=5, slippage_bps=2)
    env = PortfolioEnv(PanelArrays.from_frame(frame, scaler, "test", 3), settings, mode="eval")
    rng = np.random.default_rng(1)
    result = backtest_portfolio_policy(env, lambda obs: rng.uniform(size=4))
    assert len(result.timestamps) < len(env.market.close) - env.market.first  # the switch ended it early
    assert not result.run.units[-1].any()  # everything sold at that close
