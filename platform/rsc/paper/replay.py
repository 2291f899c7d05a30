"""A bounded paper-trading replay: stored bars go one by one through the policy endpoint over HTTP.

Each decision (made at a bar's close) fills at the next bar's open through ``rsc.core.execution``,
is written to an append-only ledger, and is reported as DogStatsD metrics.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

import pandas as pd
import requests

from rsc.config import Settings
from rsc.core.execution import Costs, Portfolio, entry_price_after, equity, position_weight, rebalance
from rsc.core.schema import CLOSE, OHLCV_COLUMNS, OPEN, SYMBOL, TIMESTAMP
from rsc.monitor import Metric, MetricsSink, names
from rsc.storage import Storage, join

log = logging.getLogger(__name__)

# Extra bars beyond the model's minimum, so that recursive indicators (Wilder's RSI) converge to the
# values training saw on the full history.
INDICATOR_LOOKBACK = 250


@dataclass(frozen=True)
class PaperResult:
    ledger_uri: str
    decisions: int
    trades: int
    final_equity: float
    cash: float
    units: float


def _bars_payload(window: pd.DataFrame) -> list[dict]:
    records = window[[TIMESTAMP, *OHLCV_COLUMNS]].copy()
    records[TIMESTAMP] = records[TIMESTAMP].astype(str)
    return records.to_dict(orient="records")


def replay(
    bars: pd.DataFrame,
    n_bars: int,
    endpoint: str,
    costs: Costs,
    initial_cash: float,
    sink: MetricsSink,
    ledger_uri: str,
    storage: Storage,
    tags: dict[str, str],
) -> PaperResult:
    """Trade the last ``n_bars`` decisions of ``bars`` (one symbol, time-sorted)."""
    info = requests.get(f"{endpoint}/v1/model", timeout=10).json()
    lookback = int(info["min_bars"]) + INDICATOR_LOOKBACK
    bars = bars.sort_values(TIMESTAMP).reset_index(drop=True)
    first = max(lookback - 1, len(bars) - 1 - n_bars)
    portfolio, entry, events, trades = Portfolio(initial_cash), 0.0, [], 0
    for t in range(first, len(bars) - 1):
        window = bars.iloc[max(0, t - lookback + 1) : t + 1]
        price = float(bars[CLOSE].iloc[t])
        weight = position_weight(portfolio, price)
        unrealised = (price / entry - 1.0) * (1 if portfolio.units > 0 else -1) if portfolio.units else 0.0
        started = time.perf_counter()
        response = requests.post(
            f"{endpoint}/v1/act",
            json={"bars": _bars_payload(window), "position": weight, "unrealised_return": unrealised},
            timeout=30,
        )
        latency_ms = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            sink.send(Metric(names.PAPER_ERRORS, 1, "count", tags))
            raise RuntimeError(f"policy endpoint answered {response.status_code}: {response.text}")
        decision = response.json()
        fill_price, mark_price = float(bars[OPEN].iloc[t + 1]), float(bars[CLOSE].iloc[t + 1])
        before = portfolio
        portfolio, cost = rebalance(portfolio, decision["target_position"], fill_price, costs)
        traded = portfolio.units - before.units
        entry = entry_price_after(before.units, entry, portfolio.units, fill_price)
        if abs(traded) > 1e-12:
            trades += 1
        stamp = str(bars[TIMESTAMP].iloc[t + 1])
        marked = equity(portfolio, mark_price)
        events += [
            {
                "type": "decision",
                "timestamp": str(bars[TIMESTAMP].iloc[t]),
                "action": decision["action"],
                "target_position": decision["target_position"],
                "model_version": decision["model_version"],
                "latency_ms": latency_ms,
            },
            {"type": "fill", "timestamp": stamp, "units": traded, "price": fill_price, "cost": cost},
            {
                "type": "mark",
                "timestamp": stamp,
                "cash": portfolio.cash,
                "units": portfolio.units,
                "price": mark_price,
                "position_value": portfolio.units * mark_price,
                "equity": marked,
            },
        ]
        for metric in (
            Metric(names.PAPER_EQUITY, marked, "gauge", tags),
            Metric(names.PAPER_PNL, marked - initial_cash, "gauge", tags),
            Metric(names.PAPER_POSITION, decision["target_position"], "gauge", tags),
            Metric(names.PAPER_DECISION_LATENCY, latency_ms, "histogram", tags),
            Metric(names.PAPER_ORDERS, 1 if abs(traded) > 1e-12 else 0, "count", tags),
        ):
            sink.send(metric)
    storage.write_bytes(ledger_uri, "".join(json.dumps(e) + "\n" for e in events).encode())
    final = equity(portfolio, float(bars[CLOSE].iloc[-1]))
    log.info("paper: %d decisions, %d trades, equity %.2f", len(events) // 3, trades, final)
    return PaperResult(ledger_uri, len(events) // 3, trades, final, portfolio.cash, portfolio.units)


def replay_run(cfg: Settings, endpoint: str, sink: MetricsSink) -> PaperResult:
    """The demo's bounded replay: the run's own bars (first symbol) through the endpoint."""
    storage = Storage.from_settings(cfg.storage)
    bars = storage.read_dataset(join(cfg.run_root, "bars"))
    symbol = cfg.data.symbols[0]
    return replay(
        bars[bars[SYMBOL] == symbol],
        cfg.paper.bars,
        endpoint,
        Costs(cfg.env.commission_bps, cfg.env.slippage_bps),
        cfg.env.initial_cash,
        sink,
        join(cfg.run_root, "paper", "ledger.jsonl"),
        storage,
        tags={"strategy": cfg.paper.strategy, "symbol": symbol},
    )
