"""evaluate: the exported policy trades the test part greedily, against buy-and-hold -> metrics + report."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass

import numpy as np

from rsc.config import Settings
from rsc.core import metrics
from rsc.core.execution import Costs
from rsc.core.schema import TEST
from rsc.env import MarketArrays, TradingEnv, greedy_rollout
from rsc.evaluate.benchmarks import buy_and_hold
from rsc.evaluate.report import equity_figure, render_html
from rsc.registry.policy import Policy
from rsc.storage import Storage, join

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluateResult:
    metrics_uri: str
    report_uri: str
    metrics: dict[str, dict[str, float]]


def run(cfg: Settings, split_uri: str, scaler_uri: str, model_uri: str) -> EvaluateResult:
    storage = Storage.from_settings(cfg.storage)
    market = MarketArrays.from_frame(
        storage.read_dataset(split_uri), storage.read_json(scaler_uri), TEST, cfg.env.window
    )
    with tempfile.TemporaryDirectory() as tmp:
        policy = Policy.load(storage.download_dir(model_uri, tmp))

    rollout = greedy_rollout(TradingEnv(market, cfg.env, mode="eval"), policy.act)
    window = slice(market.first, len(market.close))
    benchmark = buy_and_hold(
        market.open[window],
        market.close[window],
        Costs(cfg.env.commission_bps, cfg.env.slippage_bps),
        cfg.env.initial_cash,
    )
    periods, rf = cfg.evaluate.periods_per_year, cfg.evaluate.risk_free_rate
    results = {
        "policy": {
            **metrics.summary(rollout.equity, periods, rf),
            "trades": float(np.count_nonzero(np.diff(rollout.positions))),
            "costs": float(rollout.costs.sum()),
        },
        "buy_and_hold": {
            **metrics.summary(benchmark.equity, periods, rf),
            "trades": 1.0,
            "costs": float(benchmark.costs.sum()),
        },
    }
    metrics_uri = join(cfg.run_root, "evaluation", "metrics.json")
    report_uri = join(cfg.run_root, "evaluation", "report.html")
    storage.write_json(metrics_uri, results)
    page = render_html(
        f"rsc evaluation: {cfg.run.name}",
        results,
        {
            "Equity: policy vs buy-and-hold": equity_figure(
                rollout.timestamps, {"policy": rollout.equity, "buy and hold": benchmark.equity}
            )
        },
        notes=(
            f"Test period {str(rollout.timestamps[0])[:10]} to {str(rollout.timestamps[-1])[:10]}, "
            f"{len(rollout.equity) - 1} decisions; fills at the next open with "
            f"{cfg.env.commission_bps} bps commission and {cfg.env.slippage_bps} bps slippage; "
            f"Sharpe annualised with {periods:g} periods per year."
        ),
    )
    storage.write_bytes(report_uri, page.encode())
    log.info("evaluate: policy %s | buy-and-hold %s", results["policy"], results["buy_and_hold"])
    return EvaluateResult(metrics_uri, report_uri, results)
