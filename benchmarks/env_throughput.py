"""Env steps per second: rsc's envs against gym-anytrading and gym-trading-env, in one run.

Every env gets the bundled S&P 500 daily bars (1999-2018), a single instance, and the same
pre-drawn random actions (drawing them is not part of the timing). The envs take turns over several
rounds and each keeps its best round, so a busy machine skews no one env more than another.
Printed: steps/s of each env and its ratio to gym-anytrading's ``stocks-v0``.

    python benchmarks/env_throughput.py [--steps 50000] [--rounds 5]

gym-anytrading and gym-trading-env are dev-only dependencies (the ``dev`` extra).
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

from rsc.config.settings import EnvSettings, IndicatorSpec
from rsc.core.features import IndicatorRef, compute_features, feature_names
from rsc.core.schema import CLOSE, HIGH, LOW, OPEN, PART, SYMBOL, TIMESTAMP, VOLUME
from rsc.data.sources import BundledSource
from rsc.data.validate import validate_bars
from rsc.env import MarketArrays, PanelArrays, PortfolioEnv, TradingEnv

WINDOW = 30
INDICATORS = [
    IndicatorSpec(name=name, window=window)
    for name, window in [
        ("log_return", 1),
        ("log_return", 5),
        ("log_return", 20),
        ("sma_ratio", 10),
        ("sma_ratio", 50),
        ("rsi", 14),
        ("rsi", 28),
        ("volatility", 10),
        ("volatility", 20),
        ("volatility", 60),
    ]
]


def sp500_bars() -> pd.DataFrame:
    raw = next(BundledSource().fetch(["SPX"]))
    return validate_bars(raw.frame, raw.origin, raw.symbol).assign(**{SYMBOL: "SPX"})


def sp500_features() -> tuple[pd.DataFrame, dict]:
    bars = sp500_bars()
    refs = [IndicatorRef(spec.name, spec.window) for spec in INDICATORS]
    names = feature_names(refs)
    from rsc.core.features import Bars

    values = compute_features(
        Bars.from_columns({c: bars[c].to_numpy() for c in (OPEN, HIGH, LOW, CLOSE, VOLUME)}), refs
    )
    frame = bars.copy()
    frame[names] = values
    frame = frame.dropna().reset_index(drop=True)
    frame[PART] = "test"
    scaler = {"columns": names, "mean": frame[names].mean().tolist(), "std": frame[names].std().tolist()}
    return frame, scaler


def time_steps(step: Callable[[int], bool], reset: Callable[[], None], actions: list[int]) -> float:
    """Steps per second of ``step(action) -> done`` over ``actions`` (resetting when done)."""
    reset()
    started = time.perf_counter()
    for action in actions:
        if step(action):
            reset()
    return len(actions) / (time.perf_counter() - started)


def bench_rsc_single(frame: pd.DataFrame, scaler: dict, actions: list[int]) -> float:
    settings = EnvSettings(
        window=WINDOW,
        positions=(-1.0, 0.0, 1.0),
        commission_bps=5,
        slippage_bps=2,
        spread_factor=0.1,
        borrow_bps_per_year=50,
    )
    env = TradingEnv(MarketArrays.from_frame(frame, scaler, None, WINDOW), settings, mode="eval")

    def step(action: int) -> bool:
        _, _, terminated, truncated, _ = env.step(action)
        return terminated or truncated

    return time_steps(step, lambda: env.reset(seed=0), actions)


def bench_rsc_portfolio(frame: pd.DataFrame, scaler: dict, actions: list[int], n_assets: int = 10) -> float:
    # Ten assets: the S&P 500 series scaled differently per asset (same dates, same features).
    panel = pd.concat([frame.assign(**{SYMBOL: f"A{i:02d}"}) for i in range(n_assets)], ignore_index=True)
    settings = EnvSettings(window=WINDOW, commission_bps=5, slippage_bps=2)
    env = PortfolioEnv(PanelArrays.from_frame(panel, scaler, None, WINDOW), settings, mode="eval")
    weights = np.random.default_rng(0).uniform(size=(64, n_assets + 1)).astype(np.float32)

    def step(action: int) -> bool:
        _, _, terminated, truncated, _ = env.step(weights[action % 64])
        return terminated or truncated

    return time_steps(step, lambda: env.reset(seed=0), actions)


def bench_gym_anytrading(bars: pd.DataFrame, actions: list[int]) -> float:
    from gym_anytrading.envs import StocksEnv

    df = bars.rename(columns={OPEN: "Open", HIGH: "High", LOW: "Low", CLOSE: "Close", VOLUME: "Volume"})
    env = StocksEnv(df=df, window_size=WINDOW, frame_bound=(WINDOW, len(df)))

    def step(action: int) -> bool:
        _, _, terminated, truncated, _ = env.step(action % 2)
        return terminated or truncated

    return time_steps(step, lambda: env.reset(seed=0), actions)


def bench_gym_trading_env(frame: pd.DataFrame, scaler: dict, actions: list[int]) -> float:
    from gym_trading_env.environments import TradingEnv as PeerTradingEnv

    df = frame.set_index(TIMESTAMP)[[OPEN, HIGH, LOW, CLOSE, VOLUME, *scaler["columns"]]].copy()
    df = df.rename(columns={c: f"feature_{c}" for c in scaler["columns"]})
    env = PeerTradingEnv(df=df, positions=[-1, 0, 1], windows=WINDOW, trading_fees=0.0007, verbose=0)

    def step(action: int) -> bool:
        _, _, terminated, truncated, _ = env.step(action)
        return terminated or truncated

    return time_steps(step, lambda: env.reset(seed=0), actions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50_000, help="steps per env per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    frame, scaler = sp500_features()
    bars = sp500_bars()
    actions = np.random.default_rng(0).integers(0, 3, args.steps).tolist()
    benches = {
        "gym-anytrading stocks-v0": lambda: bench_gym_anytrading(bars, actions),
        "gym-trading-env TradingEnv": lambda: bench_gym_trading_env(
            frame, scaler, actions[: args.steps // 10]
        ),
        "rsc/Trading-v0 (costs, spread, borrow)": lambda: bench_rsc_single(frame, scaler, actions),
        "rsc/Portfolio-v0 (10 assets)": lambda: bench_rsc_portfolio(frame, scaler, actions),
    }
    results = dict.fromkeys(benches, 0.0)
    for _ in range(args.rounds):
        for name, bench in benches.items():
            results[name] = max(results[name], bench())
    baseline = results["gym-anytrading stocks-v0"]
    print(f"S&P 500 daily, {len(frame)} bars, window {WINDOW}, {len(scaler['columns'])} features, single env")
    print(f"{'env':42s} {'steps/s':>12s} {'vs gym-anytrading':>18s}")
    for name, rate in results.items():
        print(f"{name:42s} {rate:12,.0f} {rate / baseline:17.2f}x")


if __name__ == "__main__":
    main()
