"""The evaluate stage and ``rsc report`` on a stored run: metrics.json, report, MLflow and Datadog agree."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from rsc.cli.main import main
from rsc.core.artifacts import SearchRecord
from rsc.core.execution import Costs
from rsc.evaluate import stats
from rsc.evaluate.backtest import backtest
from rsc.evaluate.benchmarks import buy_and_hold
from rsc.monitor import MemorySink, names
from rsc.stages import evaluate
from rsc.stages.register import numeric_leaves
from rsc.storage import Storage
from rsc.storage.layout import RunLayout, write_artifact
from tests.conftest import CONFIGS, smoke_settings
from tests.stored_run import store_run
from tests.test_search import grouped_series

OVERRIDES = ("split.validation_end=2017-06-30", "evaluate.random_seeds=30", "data.symbols=[SYN]")


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """Two symbols, HPO trials with Sharpe ratios and return series: every input present."""
    root = tmp_path_factory.mktemp("evaluate")
    cfg = smoke_settings(root, *OVERRIDES, "data.symbols=[SYN, ALT]")
    returns = np.random.default_rng(0).normal(0.0003, 0.01, (240, 6))
    uris = store_run(cfg, ("SYN", "ALT"), trial_sharpes=[0.4, 1.2, -0.3, 0.7], trial_returns=returns)
    sink = MemorySink()
    result = evaluate.run(cfg, uris["split"], uris["scaler"], uris["model"], sink=sink)
    return cfg, result, sink


def test_stage_writes_metrics_and_report(evaluated):
    _, result, _ = evaluated
    stored = Storage().read_json(result.metrics_uri)
    assert stored["policy"] == result.metrics["policy"]  # what KFP logs is what was stored
    assert set(result.metrics) == {
        "policy",
        "buy_and_hold",
        "flat",
        "sma_crossover",
        "momentum",
        "random_median",
        "equal_weight",
        "min_variance",
    }
    assert all(isinstance(v, float) for values in result.metrics.values() for v in values.values())
    statistics = stored["statistics"]
    assert statistics["n_trials"] == 4 and statistics["dsr"] is not None and statistics["pbo"] is not None
    assert stored["conventions"]["periods_per_year"] == 252.0
    page = Storage().read_bytes(result.report_uri).decode()
    assert page.count('class="figure"') == 6 and "SYN, ALT" in page


def test_datadog_gauges_are_the_stored_numbers(evaluated):
    _, result, sink = evaluated
    stored = Storage().read_json(result.metrics_uri)
    sent = {(m.name, m.tags["strategy"]): m.value for m in sink.metrics}
    assert sent[(names.eval_metric("sharpe"), "policy")] == stored["policy"]["sharpe"]
    assert sent[(names.eval_metric("max_drawdown"), "buy_and_hold")] == stored["buy_and_hold"]["max_drawdown"]
    assert sent[(names.eval_metric("psr"), "policy")] == stored["statistics"]["psr"]
    assert sent[(names.eval_metric("pbo"), "policy")] == stored["statistics"]["pbo"]
    assert {m.kind for m in sink.metrics} == {"gauge"}
    assert {k for m in sink.metrics for k in m.tags} == {"strategy", "symbol"}  # bounded tags only


def test_mlflow_gets_the_numbers_and_the_gate_keys(evaluated):
    _, result, _ = evaluated
    stored = Storage().read_json(result.metrics_uri)
    logged = numeric_leaves(stored)
    assert (
        logged["policy"] == stored["policy"]
        and logged["buy_and_hold"]["sharpe"] == stored["buy_and_hold"]["sharpe"]
    )
    assert logged["statistics"]["dsr"] == stored["statistics"]["dsr"]
    assert "verdict" not in logged and "annualisation" not in logged["conventions"]


def test_the_dsr_counts_independent_tries_and_states_the_raw_count(tmp_path):
    """Three trials of four checkpoints each (one return stream per trial): N = 3, not 12 and not 1."""
    cfg = smoke_settings(tmp_path, *OVERRIDES)
    uris = store_run(cfg, trial_sharpes=[0.1, 0.2, 0.3])  # the older record, which this one replaces
    layout, storage = RunLayout(cfg.run_root), Storage()
    series = grouped_series(groups=3, members=4, noise=0.002, bars=240)
    columns = [f"t{g}/iter-{i}" for g in range(3) for i in range(1, 5)]
    buffer = io.BytesIO()
    pd.DataFrame(series, columns=columns).to_parquet(buffer, index=False)
    storage.write_bytes(layout.checkpoint_returns, buffer.getvalue())
    compared = {"t0": 0.9, "t1": -0.4, "t2": 1.6}
    record = SearchRecord(
        tune_trials={"t0": 4, "t1": 4, "t2": 4},
        compared_sharpes=compared,
        walk_forward={"candidate-0/fold-0": 2, "candidate-1/fold-0": 2},
        final_training=5,
    )
    write_artifact(storage, layout.search, record)
    result = evaluate.run(cfg, uris["split"], uris["scaler"], uris["model"], sink=MemorySink())
    stored = storage.read_json(result.metrics_uri)
    statistics, search = stored["statistics"], stored["search"]
    assert statistics["n_trials"] == 3 and statistics["n_trials_raw"] == 12 + 4 + 5
    assert search["clustered_series"] == 12 and search["walk_forward_candidates"] == 2
    periods = stored["conventions"]["periods_per_year"]
    variance = float(np.var(list(compared.values()), ddof=1)) / periods
    assert statistics["trials_sharpe_variance"] == pytest.approx(variance * periods)
    assert statistics["expected_max_sharpe"] == pytest.approx(
        stats.expected_max_sharpe(3, variance) * np.sqrt(periods)
    )
    assert statistics["pbo_splits"] and statistics["pbo"] is not None  # over all 12 checkpoints
    page = storage.read_bytes(result.report_uri).decode()
    assert "Tries looked at on validation data: 21" in page and "N = 3" in page
    assert statistics["dsr"] is not None and "3 independent trials among 21 tries" in stored["verdict"]


def test_the_final_holdout_is_reported_once_per_model_and_counted(tmp_path):
    storage, holdout_bars = Storage(), 60
    results = []

    def evaluated(cfg, uris):
        result = evaluate.run(cfg, uris["split"], uris["scaler"], uris["model"], sink=MemorySink())
        results.append(
            (storage.read_json(result.metrics_uri), storage.read_bytes(result.report_uri).decode())
        )

    first = smoke_settings(tmp_path, *OVERRIDES, f"split.holdout_bars={holdout_bars}", "run.name=first")
    uris = store_run(first)
    evaluated(first, uris)
    evaluated(first, uris)  # the same model re-evaluated: not another use
    second = smoke_settings(tmp_path, *OVERRIDES, f"split.holdout_bars={holdout_bars}", "run.name=second")
    evaluated(second, store_run(second))
    later = smoke_settings(tmp_path, *OVERRIDES, f"split.holdout_bars={holdout_bars}", "run.name=later")
    evaluated(later, store_run(later, n_bars=920))  # the data grew 20 bars: the holdout moved, overlapping
    split = storage.read_dataset(uris["split"])
    holdout_rows = split[split["part"] == "holdout"]
    assert holdout_rows["timestamp"].nunique() == holdout_bars
    uses = [stored["holdout"]["models_evaluated"] for stored, _ in results]
    assert uses == [1, 1, 2, 3]  # a re-evaluation is not another model; an overlapping holdout is one
    stored, page = results[2]
    holdout = stored["holdout"]
    start, end = (str(t)[:10] for t in (holdout_rows["timestamp"].min(), holdout_rows["timestamp"].max()))
    assert holdout["window"].endswith(end) and holdout["window"] >= start
    assert stored["period"]["end"][:10] < start  # the test period stops before the holdout
    assert set(holdout["policy"]) == {"sharpe", "total_return", "max_drawdown"}
    assert "this holdout has been used by 2 model(s)" in page


def test_stage_without_tune_outputs_says_so(tmp_path):
    cfg = smoke_settings(tmp_path, *OVERRIDES)
    uris = store_run(cfg)
    result = evaluate.run(cfg, uris["split"], uris["scaler"], uris["model"], sink=MemorySink())
    stored = Storage().read_json(result.metrics_uri)
    assert stored["statistics"]["dsr"] is None and stored["statistics"]["pbo"] is None
    assert "tune/trials.parquet is absent" in stored["notes"]["dsr"]
    assert "tune/trial_returns.parquet" in stored["notes"]["pbo"]
    assert "need at least 2 symbols" in stored["notes"]["multi_asset"]
    assert "equal_weight" not in stored
    json.dumps(stored, allow_nan=False)


def test_rsc_report_rebuilds_a_run(tmp_path, capsys):
    cfg = smoke_settings(tmp_path, *OVERRIDES, "run.name=older")
    store_run(cfg, trial_sharpes=[0.1, 0.5, 0.9])
    args = [str(CONFIGS / "base.yaml"), str(CONFIGS / "smoke.yaml"), f"storage.root=file://{tmp_path}"]
    args += ["monitor.enabled=false", *OVERRIDES]
    assert main(["report", "older", *args]) == 0
    folder = tmp_path / "older" / "evaluation"
    stored = json.loads((folder / "metrics.json").read_text())
    assert stored["statistics"]["n_trials"] == 3
    assert "rsc evaluation: older" in (folder / "report.html").read_text()
    assert "report.html" in capsys.readouterr().out


def test_a_symbol_missing_from_the_split_is_one_clear_error(tmp_path):
    cfg = smoke_settings(tmp_path, *OVERRIDES)
    uris = store_run(cfg)
    with pytest.raises(ValueError, match="no rows of symbol 'GONE'"):
        evaluate.run(
            cfg.model_copy(update={"data": cfg.data.model_copy(update={"symbols": ("GONE",)})}),
            uris["split"],
            uris["scaler"],
            uris["model"],
            sink=MemorySink(),
        )


def test_rsc_report_of_an_unknown_run_is_one_clear_error(tmp_path, capsys):
    args = [str(CONFIGS / "base.yaml"), str(CONFIGS / "smoke.yaml"), f"storage.root=file://{tmp_path}"]
    assert main(["report", "nothing-here", *args]) == 2
    error = capsys.readouterr().err
    assert "nothing-here" in error and "split/manifest.json" in error and "rsc run" in error


def _evaluate(root, *overrides):
    cfg = smoke_settings(root, *OVERRIDES, "data.symbols=[SYN, ALT]", *overrides)
    uris = store_run(cfg, ("SYN", "ALT"))
    return cfg, evaluate.run(cfg, uris["split"], uris["scaler"], uris["model"], sink=MemorySink()).metrics


def test_a_range_spread_goes_through_evaluation_and_every_benchmark_pays_it(tmp_path):
    """env.spread_factor > 0 used to crash the stage: benchmarks and random runs had no high and low."""
    _, plain = _evaluate(tmp_path / "plain")
    _, spread = _evaluate(tmp_path / "spread", "env.spread_factor=0.5")
    for strategy in (
        "policy",
        "buy_and_hold",
        "sma_crossover",
        "random_median",
        "equal_weight",
        "min_variance",
    ):
        if plain[strategy]["costs"] > 0:
            assert spread[strategy]["costs"] > plain[strategy]["costs"], strategy


def test_benchmarks_fill_as_the_policy_does(tmp_path):
    """fill: next_close used to apply to the policy only; the benchmarks filled at the next open."""
    _, metrics = _evaluate(tmp_path / "close", "env.fill=next_close")
    frame = Storage().read_dataset(f"file://{tmp_path}/close/smoke/split")
    test = frame[(frame["symbol"] == "SYN") & (frame["part"] == "test")].sort_values("timestamp")
    close = test["close"].to_numpy()
    at_close = backtest(buy_and_hold(len(close)), close, close, Costs(5, 2), 1e5)  # fills at the closes
    assert metrics["buy_and_hold"]["total_return"] == pytest.approx(at_close.equity[-1] / 1e5 - 1, rel=1e-12)
    _, opened = _evaluate(tmp_path / "open")
    assert metrics["buy_and_hold"]["total_return"] != opened["buy_and_hold"]["total_return"]
