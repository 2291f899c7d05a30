"""How long the evaluation's parts take, as ratios against stepping the env through the same bars.

Run: ``PYTHONPATH=platform:. python benchmarks/evaluation_speed.py``. Prints seconds and ratios measured
in this process; nothing is asserted.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from rsc.config.settings import EnvSettings
from rsc.core.execution import Costs
from rsc.core.schema import CLOSE, HIGH, LOW, OPEN, PART, TIMESTAMP
from rsc.env import MarketArrays, TradingEnv
from rsc.evaluate import benchmarks, stats
from rsc.evaluate.backtest import backtest, backtest_metrics

BARS = 2_000
REPEATS = 5


def best_of(function, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def market_arrays(n: int, window: int) -> MarketArrays:
    """A random walk with three random feature columns, all of it the test part."""
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0.0003, 0.01, n)))
    frame = pd.DataFrame(
        {
            TIMESTAMP: pd.bdate_range("2010-01-01", periods=n),
            OPEN: close * 1.001,
            HIGH: close * 1.002,
            LOW: close * 0.998,
            CLOSE: close,
            PART: "test",
        }
    )
    columns = ["f0", "f1", "f2"]
    frame[columns] = rng.normal(size=(n, 3))
    return MarketArrays.from_frame(
        frame, {"columns": columns, "mean": [0.0] * 3, "std": [1.0] * 3}, "test", window
    )


def main() -> None:
    market = market_arrays(BARS + 9, window=10)
    settings = EnvSettings(window=10, positions=(-1.0, 0.0, 1.0), ruin_fraction=0.01)
    actions = np.random.default_rng(0).integers(3, size=len(market.close))
    decisions = np.asarray(settings.positions)[actions]
    window = slice(market.first, len(market.close))
    open_, close = market.open[window], market.close[window]

    def env_steps() -> None:
        env = TradingEnv(market, settings, mode="eval")
        env.reset(seed=0)
        for k in range(len(close) - 1):
            env.step(actions[k])

    def replay() -> None:
        backtest_metrics(backtest(decisions[window], open_, close, Costs(5, 2), 1e5), 252.0, 0.0)

    def random_seeds() -> None:
        seeds = np.arange(200)
        benchmarks.random_runs((-1.0, 0.0, 1.0), seeds, open_, close, Costs(5, 2), 1e5, lambda r: {})

    trials = np.random.default_rng(1).normal(0, 0.01, (BARS, 50))
    baseline = best_of(env_steps)
    rows = [
        ("env: step through the bars", baseline),
        ("backtest + every metric of the same decisions", best_of(replay)),
        ("random benchmark, 200 seeds", best_of(random_seeds, 2)),
        (
            "PBO: 16 blocks (12,870 splits), 50 trials",
            best_of(lambda: stats.probability_of_backtest_overfitting(trials)),
        ),
    ]
    print(f"{len(close)} bars, best of {REPEATS}")
    for name, seconds in rows:
        print(f"{name:<50} {seconds * 1e3:9.1f} ms   {seconds / baseline:6.2f} x env")


if __name__ == "__main__":
    main()
