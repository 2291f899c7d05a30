"""Round-trip trades read off a simulated run: the trade list and the inputs of the trade metrics.

A trade opens when the position goes from flat (or the opposite side) to long or short and closes
when it returns to flat or flips side; resizing in between (rebalancing to a target weight) belongs to
the same trade. Its PnL is its cash flows at the fill prices minus its costs, plus the mark of a trade
still open at the end. A flip is split at its fill: the part that closes the old side pays its share
of that bar's cost (in proportion to units), the rest opens the new trade. So the trades' PnL plus
nothing else adds up to the run's equity change.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class RoundTrips(NamedTuple):
    """``[K]`` arrays, one entry per trade, in order of entry."""

    entry: np.ndarray  # bar index of the entry fill
    exit: np.ndarray  # bar index of the exit fill; the last bar for a trade still open
    side: np.ndarray  # +1 long, -1 short
    entry_price: np.ndarray
    exit_price: np.ndarray  # fill price, or the last close for a trade still open
    pnl: np.ndarray  # currency, after costs
    ret: np.ndarray  # pnl / equity at the close before the entry
    closed: np.ndarray  # bool: False for a trade still open at the end


def round_trips(
    units: np.ndarray, open_: np.ndarray, close: np.ndarray, costs: np.ndarray, equity: np.ndarray
) -> RoundTrips:
    """Trades of one single-asset run.

    Args:
        units: ``[T]`` signed units held after each bar's fill (0 on bar 0).
        open_: ``[T]`` fill prices.
        close: ``[T]`` mark prices.
        costs: ``[T]`` costs paid at each bar's fill.
        equity: ``[T]`` equity at each close.
    """
    units = np.asarray(units, dtype=np.float64)
    side = np.sign(units)
    changed = np.flatnonzero(side[1:] != side[:-1]) + 1  # bars where a trade ends, starts, or both
    entries = changed[side[changed] != 0]
    if len(entries) == 0:
        empty = np.empty(0)
        return RoundTrips(*(empty.astype(int),) * 3, empty, empty, empty, empty, empty.astype(bool))
    traded = np.diff(units, prepend=0.0)
    # Cash flow of every fill, and the share of each bar's cost owed by the part that opens or closes.
    flows = -traded * open_ - costs
    cumulative = np.concatenate(([0.0], np.cumsum(flows)))
    size = np.where(np.abs(traded) > 0, np.abs(traded), 1.0)
    exits_after = np.searchsorted(changed, entries, side="right")
    last = len(units) - 1
    closed = exits_after < len(changed)
    exits = np.where(closed, changed[np.minimum(exits_after, len(changed) - 1)], last)

    opening = -units[entries] * open_[entries] - costs[entries] * np.abs(units[entries]) / size[entries]
    # Fills after the entry: up to (not including) the exit fill, or every one to the end if still open.
    inside = cumulative[np.where(closed, exits, last + 1)] - cumulative[entries + 1]
    held = units[exits - 1]
    closing = np.where(
        closed, held * open_[exits] - costs[exits] * np.abs(held) / size[exits], units[last] * close[last]
    )
    pnl = opening + inside + closing
    return RoundTrips(
        entry=entries,
        exit=exits,
        side=side[entries].astype(int),
        entry_price=open_[entries],
        exit_price=np.where(closed, open_[exits], close[last]),
        pnl=pnl,
        ret=pnl / equity[entries - 1],
        closed=closed,
    )
