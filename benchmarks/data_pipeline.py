"""Data layer throughput: ingest + validate + features for many symbols of generated daily bars.

Writes one CSV per symbol (geometric random walks on business days; not timed), then times the
real stages: ``ingest`` (read, validate, write the bars dataset partitioned by symbol) and
``features`` (the configured indicators per symbol, written as a dataset). The baseline, measured in
the same run, is reading the same CSV files with pandas alone: the ratio says what validation,
features and atomic Parquet writes cost on top of reading the input.

    PYTHONPATH=platform:. python benchmarks/data_pipeline.py              # 500 symbols x 10 years
    PYTHONPATH=platform:. python benchmarks/data_pipeline.py --symbols 20 --years 2
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from rsc.config import load_settings
from rsc.core.schema import CLOSE, HIGH, LOW, OPEN, TIMESTAMP, VOLUME
from rsc.stages import features, ingest

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


def generate(folder: Path, symbols: int, bars: int, seed: int = 0) -> None:
    """One CSV per symbol, written as generated so that memory stays flat."""
    rng = np.random.default_rng(seed)
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


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--years", type=int, default=10)
    args = parser.parse_args()
    bars = args.years * 252

    with tempfile.TemporaryDirectory(prefix="rsc-bench-") as tmp:
        inputs, store = Path(tmp) / "inputs", Path(tmp) / "store"
        inputs.mkdir()
        generate(inputs, args.symbols, bars)
        indicators = (
            "[" + ", ".join(f"{{name: {n}, window: {w}, params: {p or {}}}}" for n, w, p in INDICATORS) + "]"
        )
        cfg = load_settings(
            [ROOT / "configs" / "base.yaml"],
            [
                f"storage.root=file://{store}",
                "data.source=csv",
                f"data.path=file://{inputs}",
                "data.symbols=['*']",
                "data.start=2010-01-01",
                "data.end=2030-12-31",
                "split.train_end=2015-12-31",
                "split.validation_end=2017-12-31",
                f"features.indicators={indicators}",
            ],
        )
        rows = args.symbols * bars

        started = time.perf_counter()
        raw = [pd.read_csv(path) for path in sorted(inputs.glob("*.csv"))]
        baseline = time.perf_counter() - started
        assert sum(len(frame) for frame in raw) == rows
        del raw
        rss_before = peak_rss_mib()

        started = time.perf_counter()
        bars_result = ingest.run(cfg)
        ingest_s = time.perf_counter() - started
        started = time.perf_counter()
        features_result = features.run(cfg, bars_result.bars_uri)
        features_s = time.perf_counter() - started
        total = ingest_s + features_s

    print(
        f"data pipeline: {args.symbols} symbols x {bars} daily bars = {rows:,} rows, "
        f"{len(INDICATORS)} features"
    )
    print(f"  baseline  pandas.read_csv only           {baseline:7.2f} s  {rows / baseline:12,.0f} rows/s")
    print(f"  ingest    read + validate + write        {ingest_s:7.2f} s  {rows / ingest_s:12,.0f} rows/s")
    print(
        f"  features  read + indicators + write      {features_s:7.2f} s  {rows / features_s:12,.0f} rows/s"
    )
    print(f"  total     ingest + validate + features   {total:7.2f} s  {rows / total:12,.0f} rows/s")
    print(f"  ratio     total / baseline               {total / baseline:7.2f} x")
    print(f"  peak RSS  {peak_rss_mib():,.0f} MiB (before the stages: {rss_before:,.0f} MiB)")
    print(f"  output    {bars_result.rows:,} bar rows, {features_result.rows:,} feature rows")


if __name__ == "__main__":
    main()
