"""Data layer throughput: ingest + validate + features for many symbols of generated bars.

Writes one CSV per symbol (geometric random walks; not timed, written symbol by symbol so that the
generator's memory stays flat), then times the real stages: ``ingest`` (read, validate, write the
bars dataset partitioned by symbol) and ``features`` (the configured indicators per symbol, written
as a dataset). Two baselines, measured in the same run, read the same CSV files and do nothing else:
``pandas.read_csv`` and pyarrow's multi-threaded ``pyarrow.csv.read_csv``; the ratios say what
validation, features and atomic Parquet writes cost on top of reading the input. The floor reads each
file with pyarrow and stores it as ingest stores a symbol (the same Parquet encoding and atomic,
fsync'd write, on as many threads) without any check: the least a stage that keeps the bars takes
here. ``cores`` is the process CPU time over the wall time. Each round measures the baselines, the
floor and the stages back to back (``--rounds``, 3 for the daily case): this machine's speed drifts
between rounds, so each round's ratios are its own and the table shows their median.

The daily case is business-day bars, ``--years`` x 252 per symbol. ``--minute`` is the minute-bar
case: ``--rows`` bars in all (50 million by default), split evenly over ``--symbols``, one bar a
minute around the clock (UTC stamps); it also reports the peak memory (RSS) of the stages, which
stream the data by symbol and so stay far below its size.

    PYTHONPATH=platform:. python benchmarks/data_pipeline.py              # 500 symbols x 10 years
    PYTHONPATH=platform:. python benchmarks/data_pipeline.py --symbols 20 --years 2
    PYTHONPATH=platform:. python benchmarks/data_pipeline.py --minute     # 500 x 100,000 minute bars
    PYTHONPATH=platform:. python benchmarks/data_pipeline.py --minute --rows 5000000
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.csv as pcsv

from rsc.config import Settings, load_settings
from rsc.core.schema import CLOSE, HIGH, LOW, OPEN, TIMESTAMP, VOLUME
from rsc.data.parallel import WORKERS
from rsc.stages import features, ingest
from rsc.storage import Storage
from rsc.storage.store import parquet_bytes

ROOT = Path(__file__).resolve().parents[1]
# The seed system's indicator set plus the skeleton's: 17 features per bar.
INDICATORS = [
    ("log_return", 1, {}),
    ("log_return", 5, {}),
    ("log_return", 20, {}),
    ("sma_ratio", 20, {}),
    ("ema_ratio", 20, {}),
    ("rsi", 14, {}),
    ("macd", 26, {"fast": 12, "signal": 9}),
    ("macd_signal", 26, {"fast": 12, "signal": 9}),
    ("macd_hist", 26, {"fast": 12, "signal": 9}),
    ("bollinger_b", 20, {"k": 2}),
    ("atr", 14, {}),
    ("adx", 14, {}),
    ("plus_di", 14, {}),
    ("minus_di", 14, {}),
    ("aroon_osc", 14, {}),
    ("volatility", 20, {}),
    ("volume_z", 20, {}),
]


def generate(folder: Path, symbols: int, bars: int, seed: int = 0, minute: bool = False) -> None:
    """One CSV per symbol, written as generated so that memory stays flat."""
    rng = np.random.default_rng(seed)
    if minute:
        stamps = pd.date_range("2016-01-01", periods=bars, freq="min").strftime("%Y-%m-%dT%H:%M:%SZ")
    else:
        stamps = pd.bdate_range("2010-01-04", periods=bars).strftime("%Y-%m-%d")
    for i in range(symbols):
        close = 50 * np.exp(np.cumsum(rng.normal(0.0003, 0.015, bars)))
        open_ = close * np.exp(rng.normal(0, 0.004, bars))
        wick = np.exp(np.abs(rng.normal(0, 0.006, (2, bars))))
        pd.DataFrame(
            {
                TIMESTAMP: stamps,
                OPEN: open_.round(4),
                HIGH: (np.maximum(open_, close) * wick[0]).round(4),
                LOW: (np.minimum(open_, close) / wick[1]).round(4),
                CLOSE: close.round(4),
                VOLUME: rng.integers(100_000, 5_000_000, bars),
            }
        ).to_csv(folder / f"S{i:04d}.csv", index=False)


def store_floor(files: list[Path], folder: Path) -> None:
    """Each file read by pyarrow and stored as ingest stores a symbol's bars, on as many threads as
    ingest uses; nothing checked."""
    storage = Storage()

    def one(path: Path) -> None:
        storage.write_bytes(f"file://{folder}/{path.stem}.parquet", parquet_bytes(pcsv.read_csv(path)))

    with ThreadPoolExecutor(2 * WORKERS) as pool:
        list(pool.map(one, files))


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--years", type=int, default=10, help="daily case: years of bars per symbol")
    parser.add_argument("--minute", action="store_true", help="the minute-bar case")
    parser.add_argument("--rows", type=int, default=50_000_000, help="minute case: bars in all")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default: 3 daily, 1 minute)")
    args = parser.parse_args()
    args.rounds = args.rounds or (1 if args.minute else 3)
    bars = args.rows // args.symbols if args.minute else args.years * 252
    size = "minute" if args.minute else "daily"
    # Minute bars trade around the clock: no weekday calendar, so sessions are days with bars.
    window = ["data.frequency=1m"] if args.minute else []

    with tempfile.TemporaryDirectory(prefix="rsc-bench-") as tmp:
        inputs, store = Path(tmp) / "inputs", Path(tmp) / "store"
        inputs.mkdir()
        generate(inputs, args.symbols, bars, minute=args.minute)
        indicators = (
            "[" + ", ".join(f"{{name: {n}, window: {w}, params: {p or {}}}}" for n, w, p in INDICATORS) + "]"
        )
        overrides = [
            "data.source=csv",
            f"data.path=file://{inputs}",
            "data.symbols=['*']",
            "data.start=2010-01-01",
            "data.end=2030-12-31",
            "split.train_end=2015-12-31",
            "split.validation_end=2017-12-31",
            f"features.indicators={indicators}",
            *window,
        ]
        rows = args.symbols * bars
        files = sorted(inputs.glob("*.csv"))
        rounds = []
        for i in range(args.rounds):
            root = store / f"round-{i}"
            cfg = load_settings([ROOT / "configs" / "base.yaml"], [f"storage.root=file://{root}", *overrides])
            rounds.append(one_round(cfg, files, rows, store / f"floor-{i}"))
            shutil.rmtree(root)
        rss_before = min(r.pop("rss_before") for r in rounds)

    print(
        f"data pipeline: {args.symbols} symbols x {bars:,} {size} bars = {rows:,} rows, "
        f"{len(INDICATORS)} features, {len(rounds)} round(s); seconds are each round's, "
        "ratios the median of the rounds' own ratios"
    )
    print(f"  {'step':<42} {'seconds':>20} {'rows/s':>12} {'/ pandas':>9} {'/ pyarrow':>9} {'cores':>6}")
    for step, key in (
        ("baseline: pandas.read_csv", "pandas"),
        ("baseline: pyarrow.csv.read_csv", "pyarrow"),
        ("floor: pyarrow read + Parquet write", "floor"),
        ("ingest (read + validate + write)", "ingest"),
        ("features (read + indicators + write)", "features"),
        ("total (ingest + validate + features)", "total"),
    ):
        seconds = [r[key] for r in rounds]
        per_pandas = statistics.median(r[key] / r["pandas"] for r in rounds)
        per_arrow = statistics.median(r[key] / r["pyarrow"] for r in rounds)
        cores = statistics.median(r[f"{key} cpu"] / r[key] for r in rounds)
        shown = " ".join(f"{x:.2f}" for x in seconds)
        print(
            f"  {step:<42} {shown:>20} {rows / statistics.median(seconds):12,.0f} "
            f"{per_pandas:8.2f}x {per_arrow:8.2f}x {cores:6.2f}"
        )
    print(f"  peak RSS  {peak_rss_mib():,.0f} MiB (before the stages: {rss_before:,.0f} MiB)")


def one_round(cfg: Settings, files: list[Path], rows: int, scratch: Path) -> dict[str, float]:
    """The baselines and the floor, then both stages into a fresh store, a fraction of a second apart
    (this machine's speed drifts between rounds, so each round's ratios are its own): each step's wall
    seconds under its name, its CPU seconds under ``<name> cpu``."""
    timed: dict[str, float] = {}

    def measure(name: str, step: Callable[[], object]) -> object:
        wall, cpu = time.perf_counter(), cpu_seconds()
        result = step()
        timed[name], timed[f"{name} cpu"] = time.perf_counter() - wall, cpu_seconds() - cpu
        return result

    # One file held at a time.
    assert measure("pandas", lambda: sum(len(pd.read_csv(path)) for path in files)) == rows
    assert measure("pyarrow", lambda: sum(pcsv.read_csv(path).num_rows for path in files)) == rows
    measure("floor", lambda: store_floor(files, scratch))
    shutil.rmtree(scratch)
    timed["rss_before"] = peak_rss_mib()
    bars = measure("ingest", lambda: ingest.run(cfg))
    written = measure("features", lambda: features.run(cfg, bars.bars_uri))
    assert bars.rows == rows and written.rows > 0
    for kind in ("", " cpu"):
        timed[f"total{kind}"] = timed[f"ingest{kind}"] + timed[f"features{kind}"]
    return timed


if __name__ == "__main__":
    main()
