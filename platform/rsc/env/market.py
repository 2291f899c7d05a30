"""Preloaded, contiguous market arrays the envs index by integer ``t`` (time on axis 0)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from rsc.core import observation
from rsc.core.artifacts import Scaler
from rsc.core.schema import CLOSE, HIGH, LOW, OPEN, PART, SYMBOL, TIMESTAMP, TRADABLE


def _part_bounds(frame: pd.DataFrame, part: str | None, window: int) -> tuple[int, int, int]:
    """(begin, first, stop) rows: ``part``'s rows plus up to ``window - 1`` earlier rows as context."""
    if part is None:
        start, stop = 0, len(frame)
    else:
        rows = np.flatnonzero(frame[PART].to_numpy() == part)
        if len(rows) == 0:
            raise ValueError(f"no rows of part {part!r} in the dataset")
        start, stop = int(rows[0]), int(rows[-1]) + 1
    begin = max(0, start - (window - 1))
    start = max(start, begin + window - 1)  # not enough history: trade from the first full window
    if stop - start < 2:
        raise ValueError(f"part {part!r} has fewer than 2 tradable bars after a {window}-bar window")
    return begin, start - begin, stop


def _scaled(values: np.ndarray, scaler: Scaler) -> np.ndarray:
    return np.ascontiguousarray(
        observation.scale(values, np.asarray(scaler.mean), np.asarray(scaler.std)), dtype=np.float32
    )


def as_scaler(scaler: Scaler | Mapping[str, Any]) -> Scaler:
    """The typed scaler (a ``scaler.json`` read elsewhere, or a plain dict as tests build it)."""
    return scaler if isinstance(scaler, Scaler) else Scaler.model_validate(dict(scaler))


class MarketArrays(NamedTuple):
    """One symbol: ``features [T, F]`` (scaled), prices ``[T]``; ``first`` is the first tradable bar.

    Rows before ``first`` are context only: they feed the observation window of the first bars.
    """

    features: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    timestamps: np.ndarray
    first: int

    @classmethod
    def from_frame(
        cls, frame: pd.DataFrame, scaler: Scaler | Mapping[str, Any], part: str | None, window: int
    ) -> MarketArrays:
        """Build from one symbol's feature dataset.

        Args:
            frame: rows of one symbol (with a ``part`` column when ``part`` is given).
            scaler: ``{"columns", "mean", "std"}`` fitted on the training part.
        """
        scaler = as_scaler(scaler)
        if SYMBOL in frame.columns and frame[SYMBOL].nunique() > 1:
            raise ValueError("MarketArrays holds one symbol; use PanelArrays for several")
        frame = frame.sort_values(TIMESTAMP).reset_index(drop=True)
        begin, first, stop = _part_bounds(frame, part, window)
        rows = frame.iloc[begin:stop]
        prices = {
            name: np.ascontiguousarray(rows[name].to_numpy(np.float64)) for name in (OPEN, HIGH, LOW, CLOSE)
        }
        return cls(
            features=_scaled(rows[list(scaler.columns)].to_numpy(np.float64), scaler),
            open=prices[OPEN],
            high=prices[HIGH],
            low=prices[LOW],
            close=prices[CLOSE],
            timestamps=rows[TIMESTAMP].to_numpy(),
            first=first,
        )


class PanelArrays(NamedTuple):
    """Several symbols on common timestamps: ``features [T, N, F]``, prices ``[T, N]``.

    ``tradable [T, N]`` is False on bars a symbol did not trade (forward-filled by ``data.align=union``):
    orders for it on those bars are not filled.
    """

    features: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    timestamps: np.ndarray
    symbols: tuple[str, ...]
    first: int
    tradable: np.ndarray | None = None

    @classmethod
    def from_frame(
        cls, frame: pd.DataFrame, scaler: Scaler | Mapping[str, Any], part: str | None, window: int
    ) -> PanelArrays:
        """Build from a multi-symbol feature dataset; only timestamps every symbol has are kept (an aligned
        dataset, :func:`rsc.data.align.align_symbols`, has every symbol at every timestamp)."""
        scaler = as_scaler(scaler)
        symbols = tuple(sorted(frame[SYMBOL].unique()))
        counts = frame.groupby(TIMESTAMP)[SYMBOL].nunique()
        common = counts.index[counts.to_numpy() == len(symbols)]
        frame = frame[frame[TIMESTAMP].isin(common)].sort_values([TIMESTAMP, SYMBOL]).reset_index(drop=True)
        stamps = frame[TIMESTAMP].to_numpy()[:: len(symbols)]
        per_time = frame.iloc[:: len(symbols)].reset_index(drop=True)
        begin, first, stop = _part_bounds(per_time, part, window)
        n_time, n_sym = len(stamps), len(symbols)

        def panel(columns) -> np.ndarray:
            return frame[columns].to_numpy(np.float64).reshape(n_time, n_sym, -1)[begin:stop]

        features = _scaled(panel(list(scaler.columns)), scaler)
        prices = {name: np.ascontiguousarray(panel([name])[..., 0]) for name in (OPEN, HIGH, LOW, CLOSE)}
        tradable = panel([TRADABLE])[..., 0].astype(bool) if TRADABLE in frame.columns else None
        return cls(
            features,
            prices[OPEN],
            prices[HIGH],
            prices[LOW],
            prices[CLOSE],
            stamps[begin:stop],
            symbols,
            first,
            None if tradable is None or tradable.all() else np.ascontiguousarray(tradable),
        )


def episode_bounds(
    mode: str, first: int, n_bars: int, episode_length: int, rng: np.random.Generator
) -> tuple[int, int]:
    """(start, end) bars of an episode: a random ``episode_length`` slice in training (when the data
    is long enough), one full pass from ``first`` to the last bar in evaluation."""
    last = n_bars - 1
    if mode == "train" and last - first > episode_length:
        start = int(rng.integers(first, last - episode_length + 1))
        return start, start + episode_length
    return first, last
