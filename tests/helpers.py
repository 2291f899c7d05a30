"""Small builders shared by tests (synthetic markets and feature frames)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rsc.core.schema import CLOSE, HIGH, LOW, OPEN, PART, SYMBOL, TIMESTAMP, VOLUME


def synthetic_bars(
    n: int = 400, drift: float = 0.0005, seed: int = 0, symbol: str = "SYN", volatility: float = 0.01
) -> pd.DataFrame:
    """A geometric random walk as a valid OHLCV frame on business days."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(drift, volatility, n)))
    open_ = close * np.exp(rng.normal(0, 0.002, n))
    return pd.DataFrame(
        {
            TIMESTAMP: pd.bdate_range("2015-01-01", periods=n),
            SYMBOL: symbol,
            OPEN: open_,
            HIGH: np.maximum(open_, close) * 1.003,
            LOW: np.minimum(open_, close) * 0.997,
            CLOSE: close,
            VOLUME: rng.uniform(1e6, 2e6, n),
        }
    )


def feature_frame(n: int = 300, n_features: int = 3, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """Bars plus random feature columns, all rows ``part == test``, with an identity scaler."""
    frame = synthetic_bars(n, seed=seed)
    columns = [f"f{i}" for i in range(n_features)]
    frame[columns] = np.random.default_rng(seed).normal(size=(n, n_features))
    frame[PART] = "test"
    return frame, {"columns": columns, "mean": [0.0] * n_features, "std": [1.0] * n_features}


def panel_frame(
    n: int = 200, symbols: tuple[str, ...] = ("AAA", "BBB", "CCC"), n_features: int = 2, seed: int = 0
) -> tuple[pd.DataFrame, dict]:
    """Several symbols' bars plus random features on common dates, all ``part == test``."""
    frames = [synthetic_bars(n, seed=seed + i, symbol=s) for i, s in enumerate(symbols)]
    frame = pd.concat(frames, ignore_index=True)
    columns = [f"f{i}" for i in range(n_features)]
    frame[columns] = np.random.default_rng(seed).normal(size=(len(frame), n_features))
    frame[PART] = "test"
    return frame, {"columns": columns, "mean": [0.0] * n_features, "std": [1.0] * n_features}
