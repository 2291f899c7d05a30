"""Env steps per second: rsc's envs against gym-anytrading and gym-trading-env, in one run.

Every env gets the bundled S&P 500 daily bars (1999-2018), a single instance, and the same
pre-drawn random actions (drawing them is not part of the timing). The envs take turns over several
rounds. Printed per env: its best round's steps/s and its ratio to gym-anytrading's ``stocks-v0``,
the median over rounds of the ratio within each round (this machine's speed drifts by tens of
percent from one second to the next; a ratio taken within a round cancels most of that), with the
lowest and highest round.

    python benchmarks/env_throughput.py [--steps 50000] [--rounds 15]

gym-anytrading and gym-trading-env are dev-only dependencies (the ``dev`` extra).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import gymnasium as gym
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


def time_steps(env: gym.Env, actions: list) -> float:
    """Steps per second of ``env.step`` over ``actions`` (resetting when an episode ends).

    The loop is the same for every env and calls ``env.step`` directly, so that the loop's own cost
    weighs on each env alike; actions come already in each env's own form.
    """
    step, reset = env.step, env.reset
    reset(seed=0)
    started = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = step(action)
        if terminated or truncated:
            reset(seed=0)
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
    return time_steps(env, actions)


def bench_rsc_portfolio(frame: pd.DataFrame, scaler: dict, actions: list[int], n_assets: int = 10) -> float:
    # The S&P 500 series as each of the assets (same dates, same features): the step's cost depends on
    # the number of assets, not on their prices. From 25 assets the step runs numpy over the asset axis.
    panel = pd.concat([frame.assign(**{SYMBOL: f"A{i:02d}"}) for i in range(n_assets)], ignore_index=True)
    settings = EnvSettings(window=WINDOW, commission_bps=5, slippage_bps=2)
    env = PortfolioEnv(PanelArrays.from_frame(panel, scaler, None, WINDOW), settings, mode="eval")
    weights = np.random.default_rng(0).uniform(size=(64, n_assets + 1)).astype(np.float32)
    return time_steps(env, [weights[action % 64] for action in actions])


def bench_gym_anytrading(bars: pd.DataFrame, actions: list[int]) -> float:
    from gym_anytrading.envs import StocksEnv

    df = bars.rename(columns={OPEN: "Open", HIGH: "High", LOW: "Low", CLOSE: "Close", VOLUME: "Volume"})
    env = StocksEnv(df=df, window_size=WINDOW, frame_bound=(WINDOW, len(df)))
    return time_steps(env, [action % 2 for action in actions])  # its actions: sell, buy


def bench_gym_trading_env(frame: pd.DataFrame, scaler: dict, actions: list[int]) -> float:
    from gym_trading_env.environments import TradingEnv as PeerTradingEnv

    df = frame.set_index(TIMESTAMP)[[OPEN, HIGH, LOW, CLOSE, VOLUME, *scaler["columns"]]].copy()
    df = df.rename(columns={c: f"feature_{c}" for c in scaler["columns"]})
    env = PeerTradingEnv(df=df, positions=[-1, 0, 1], windows=WINDOW, trading_fees=0.0007, verbose=0)
    return time_steps(env, actions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50_000, help="steps per env per round")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    frame, scaler = sp500_features()
    bars = sp500_bars()
    actions = np.random.default_rng(0).integers(0, 3, args.steps).tolist()
    # Run in this order every round: rsc's single-asset env right after gym-anytrading, so that the
    # headline ratio compares two measurements a fraction of a second apart.
    benches = {
        "gym-anytrading stocks-v0": lambda: bench_gym_anytrading(bars, actions),
        "rsc/Trading-v0 (costs, spread, borrow)": lambda: bench_rsc_single(frame, scaler, actions),
        "rsc/Portfolio-v0 (10 assets)": lambda: bench_rsc_portfolio(frame, scaler, actions),
        "rsc/Portfolio-v0 (100 assets)": lambda: bench_rsc_portfolio(
            frame, scaler, actions[: args.steps // 4], n_assets=100
        ),
        "gym-trading-env TradingEnv": lambda: bench_gym_trading_env(
            frame, scaler, actions[: args.steps // 10]
        ),
    }
    rates: dict[str, list[float]] = {name: [] for name in benches}
    for _ in range(args.rounds):
        for name, bench in benches.items():
            rates[name].append(bench())
    baseline = rates["gym-anytrading stocks-v0"]
    print(f"S&P 500 daily, {len(frame)} bars, window {WINDOW}, {len(scaler['columns'])} features, single env")
    print(f"{'env':42s} {'steps/s':>10s} {'vs gym-anytrading':>18s} {'rounds':>13s}")
    for name, series in rates.items():
        ratios = [rate / base for rate, base in zip(series, baseline, strict=True)]
        spread = f"{min(ratios):.2f}-{max(ratios):.2f}x"
        print(f"{name:42s} {max(series):10,.0f} {statistics.median(ratios):17.2f}x {spread:>13s}")


if __name__ == "__main__":
    main()
