"""CSV files whose columns take a header row of prices and one of tickers, as
``yfinance.download(...).to_csv(path)`` writes them (one ticker or many):

    Price,Adj Close,Close,High,Low,Open,Volume
    Ticker,SPY,SPY,SPY,SPY,SPY,SPY
    Date,,,,,,

One ticker's file is its bars (named by the file, as any file of one symbol); a file of several tickers
is read in the long layout, a ``symbol`` column naming each row's ticker.
"""

from __future__ import annotations

import io

import pandas as pd

from rsc.core.schema import SYMBOL


def has_ticker_header(data: bytes) -> bool:
    """Whether the second line starts ``Ticker,`` and the third names the index alone (``Date,,,``)."""
    first = data.find(b"\n")
    if first < 0 or data[first + 1 : first + 8].lower() != b"ticker,":  # the usual file: one look
        return False
    second = data.find(b"\n", first + 1)
    third = data.find(b"\n", second + 1)
    if second < 0 or third < 0:
        return False
    tickers, index = data[first + 1 : second].split(b","), data[second + 1 : third].split(b",")
    return len(index) == len(tickers) and bool(index[0].strip()) and not any(f.strip() for f in index[1:])


def read_ticker_csv(data: bytes) -> tuple[pd.DataFrame, list[str]]:
    """The bars of such a file (the index row's name, e.g. ``Date``, as the first column) and its
    tickers in the file's order."""
    index_name = data.splitlines()[2].split(b",")[0].decode().strip()
    wide = pd.read_csv(io.BytesIO(data), header=[0, 1], index_col=0, skiprows=[2])
    tickers = list(dict.fromkeys(str(t) for t in wide.columns.get_level_values(1)))
    if len(tickers) == 1:
        frame = wide.droplevel(1, axis=1)
    else:  # rows where a ticker has no bar (its history is shorter) are not bars of it
        frame = wide.stack(level=1, future_stack=True).dropna(how="all")
        frame = frame.rename_axis([index_name, SYMBOL]).reset_index(SYMBOL).sort_values(SYMBOL, kind="stable")
    frame = frame.rename_axis(index_name).reset_index()
    frame.columns.name = None
    return frame, tickers
