"""Paper trader throughput and restart time, on a local file:// ledger.

A replay of generated daily bars goes through the trader with an in-process policy (a small
TorchScript network over the platform's features, as a registered model is served). The baseline,
measured in the same run, asks the same policy for the same decisions in a bare loop: the ratio says
what the broker, the state, the telemetry and one fsync'd ledger segment per bar cost on top of
deciding. Then the restart: rebuilding the state from every segment, against loading the latest
snapshot and the segments after it.

    PYTHONPATH=platform:. python benchmarks/paper_trader.py              # 2,000 bars
    PYTHONPATH=platform:. python benchmarks/paper_trader.py --bars 300
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rsc.config import load_settings
from rsc.core.features import IndicatorRef
from rsc.core.schema import CLOSE, HIGH, LOW, OPEN, SYMBOL, TIMESTAMP, VOLUME
from rsc.monitor import NullSink
from rsc.paper.app import build_trader
from rsc.paper.decisions import INDICATOR_LOOKBACK, PolicyDecisions
from rsc.paper.history import History
from rsc.paper.ledger import Ledger
from rsc.registry.policy import Policy
from rsc.storage import Storage, join

ROOT = Path(__file__).resolve().parents[1]


class Momentum(torch.nn.Module):
    """Long after an up bar, else flat: a network with the served policy's interface."""

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return (obs[:, -3] > 0).long()


def bars(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0.0003, 0.01, n)))
    open_ = close * np.exp(rng.normal(0, 0.002, n))
    return pd.DataFrame(
        {
            TIMESTAMP: pd.bdate_range("2000-01-03", periods=n),
            SYMBOL: "SYN",
            OPEN: open_,
            HIGH: np.maximum(open_, close) * 1.003,
            LOW: np.minimum(open_, close) * 0.997,
            CLOSE: close,
            VOLUME: rng.uniform(1e6, 2e6, n),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=2_000, help="bars traded")
    args = parser.parse_args()
    refs = [IndicatorRef.of("log_return", 1), IndicatorRef.of("rsi", 14), IndicatorRef.of("volatility", 20)]
    spec = {
        "indicators": [ref.to_dict() for ref in refs],
        "window": 10,
        "positions": [0.0, 1.0],
        "scaler": {"mean": [0.0] * 3, "std": [1.0] * 3},
    }
    policy = Policy(torch.jit.script(Momentum()), spec)
    frame = bars(args.bars + policy.min_bars + INDICATOR_LOOKBACK)
    tmp = Path(tempfile.mkdtemp())
    try:
        cfg = load_settings(
            [ROOT / "configs" / "base.yaml"],
            [
                f"storage.root=file://{tmp}",
                "data.symbols=[SYN]",
                f"paper.bars={args.bars}",
                "paper.snapshot_every=100",
                "monitor.enabled=false",
                "monitor.drift=false",
                "paper.risk.max_drawdown=null",
                "paper.risk.max_daily_loss=null",
            ],
        )
        Storage().write_dataset(join(cfg.run_root, "bars"), frame)
        source = PolicyDecisions(policy, "bench", 1)

        # Baseline: the same decisions, nothing else.
        history = History()
        history.extend(frame.head(len(frame) - args.bars))
        trader = build_trader(cfg, NullSink(), champion=source)
        steps = list(trader.feed.steps(None, lambda s: None))
        started = time.perf_counter()
        for step in steps:
            history.add(step)
            window = history.window("SYN", policy.min_bars + INDICATOR_LOOKBACK)
            source.decide(window, 0.0, 0.0)
        decide_s = time.perf_counter() - started

        started = time.perf_counter()
        outcome = trader.run()
        trade_s = time.perf_counter() - started
        assert outcome.bars == args.bars

        ledger = Ledger(Storage(), outcome.ledger_uri)
        started = time.perf_counter()
        with_snapshots = ledger.load()
        snapshot_s = time.perf_counter() - started
        shutil.rmtree(tmp / cfg.run.name / "paper" / cfg.paper.session / "snapshots")
        started = time.perf_counter()
        replayed = ledger.load()
        fold_s = time.perf_counter() - started
        assert replayed.to_json() == with_snapshots.to_json() == outcome.state.to_json()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    n = args.bars
    print(f"{n} bars, one symbol, in-process policy ({len(refs)} features, window {spec['window']})")
    print(f"{'step':48} {'seconds':>9} {'bars/s':>9}")
    print(f"{'baseline: decisions alone':48} {decide_s:9.2f} {n / decide_s:9.0f}")
    print(f"{'paper trader (broker, state, ledger segment)':48} {trade_s:9.2f} {n / trade_s:9.0f}")
    print(f"{'trader / baseline':48} {trade_s / decide_s:8.2f}x")
    print(f"{'restart: every segment':48} {fold_s:9.3f}")
    print(f"{'restart: latest snapshot + the rest':48} {snapshot_s:9.3f}")
    print(f"{'every segment / snapshot':48} {fold_s / snapshot_s:8.1f}x")


if __name__ == "__main__":
    main()
