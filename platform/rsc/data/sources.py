"""Where bars come from: one small interface, one class per provider.

A source yields :class:`RawBars` (symbol, origin, frame as the provider gave it); validation comes
after, so every provider's data goes through the same checks. Frames keep the provider's row numbers
as their index, so that findings name the row of the file. Providers: the bundled real samples, CSV
and Parquet files (local or s3://) and Yahoo Finance (:mod:`rsc.data.yahoo`).

For ingest, a file that needs no help and passes every check comes as :class:`CleanBars` instead
(checked arrays, no frame: :func:`fetch_calls`); it holds the bars the frame route would give.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from functools import partial
from importlib import resources
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from rsc.config.settings import DataSettings
from rsc.core.schema import BAR_COLUMNS, SYMBOL, TIMESTAMP
from rsc.data.columns import FileFormat, Reading, clean_columns, match_columns, to_bar_columns
from rsc.data.dialect import COMMA, CsvDialect, grouped_numbers, pandas_csv, sniff
from rsc.data.files import bare_name, decompressed, is_bar_file, symbol_of
from rsc.data.raw import ALL, BarSource, CleanBars, RawBars, SourceError
from rsc.data.ticker_csv import has_ticker_header, read_ticker_csv
from rsc.data.yahoo import YahooSource
from rsc.storage import Storage
from rsc.storage.store import sha256_bytes

# Real daily bars shipped with the package: S&P 500 index 1999-2018, GOOG 2004-2013.
BUNDLED: dict[str, str] = {"SPX": "sp500_daily.csv", "GOOG": "goog_daily.csv"}
# Daily adjusted closes of 20 S&P 500 stocks, 2008-2018, one column per stock (closes only: filled at
# the next close, no range-based spread; its licence note is beside it).
BUNDLED_CLOSES = "sp500_stocks_closes.csv"
BUNDLED_CLOSE_SYMBOLS: tuple[str, ...] = (
    "AAPL", "AMD", "BAC", "BBY", "CVX", "GE", "HD", "JNJ", "JPM", "KO",
    "LLY", "MRK", "MSFT", "PEP", "PFE", "PG", "RRC", "UNH", "WMT", "XOM",
)  # fmt: skip
Fetched = RawBars | CleanBars  # what a read call delivers
_UTC_SUFFIX = r"(?:Z|[+-]00:?00)$"  # a stamp written in UTC


class BundledSource:
    """The real daily samples shipped in the package."""

    def fetch(self, symbols: Sequence[str]) -> Iterator[RawBars]:
        closes: pd.DataFrame | None = None
        for symbol in sorted(BUNDLED) if list(symbols) == [ALL] else symbols:
            if symbol in BUNDLED_CLOSE_SYMBOLS:
                if closes is None:
                    closes, digest = self._closes()
                rows = closes[closes[SYMBOL] == symbol].drop(columns=[SYMBOL])
                yield RawBars(symbol, f"bundled:{BUNDLED_CLOSES}[{symbol}]", rows, digest)
                continue
            if symbol not in BUNDLED:
                known = sorted(BUNDLED) + sorted(BUNDLED_CLOSE_SYMBOLS)
                raise SourceError(f"no bundled sample for symbol {symbol!r}; bundled: {known}")
            data = resources.files("rsc.data").joinpath("samples", BUNDLED[symbol]).read_bytes()
            yield RawBars(
                symbol, f"bundled:{BUNDLED[symbol]}", pd.read_csv(io.BytesIO(data)), sha256_bytes(data)
            )

    @staticmethod
    def _closes() -> tuple[pd.DataFrame, str]:
        """The bundled closes file as long close-only bars (one ``symbol`` per stock) and its hash."""
        data = resources.files("rsc.data").joinpath("samples", BUNDLED_CLOSES).read_bytes()
        origin = f"bundled:{BUNDLED_CLOSES}"
        frame, _ = to_bar_columns(pd.read_csv(io.BytesIO(data)), origin, FileFormat(layout="wide"))
        return frame, sha256_bytes(data)


class FileSource:
    """CSV or Parquet files under a URI.

    ``path`` is one of: a template with ``{symbol}``; a folder of files named after their symbol
    (``SPX.csv``; URL-quoted names such as ``%5EGSPC.csv`` are unquoted); or one file, holding either
    one symbol or many in a ``symbol`` column (long format).
    """

    def __init__(
        self, path: str, storage: Storage, default_format: str = "csv", fmt: FileFormat | None = None
    ):
        self.path, self.storage, self.default_format = path, storage, default_format
        self.fmt = fmt or FileFormat()
        self.readings: dict[str, Reading] = {}  # origin -> what the loader did (rsc data inspect)

    def fetch(self, symbols: Sequence[str]) -> Iterator[RawBars]:
        return (read() for read in self.readers(symbols))

    def readers(self, symbols: Sequence[str], clean: bool = False) -> Iterator[Callable[[], Fetched]]:
        """One call per symbol that delivers its bars: a file per symbol is read by the call itself, so
        that a pool of workers reads files in parallel (see :func:`fetch_calls`). With ``clean``, a
        clean file's bars come as :class:`CleanBars`, checked already."""
        everything = list(symbols) == [ALL]
        read = self._clean_or_raw if clean else self._raw
        if "{symbol}" in self.path:
            if everything:
                raise SourceError(
                    f"{self.path}: data.symbols=['*'] needs a folder or one file, not a template"
                )
            for symbol in symbols:
                yield partial(read, symbol, self.path.replace("{symbol}", symbol))
        elif self.storage.isdir(self.path):
            listed = self.storage.list_files(self.path)
            files = {symbol_of(uri): uri for uri in listed if is_bar_file(uri)}
            if not files:
                held = [uri.rsplit("/", 1)[-1] for uri in listed][:10]
                raise SourceError(
                    f"{self.path}: no bar files in the folder (.csv or .parquet, or .csv compressed as "
                    f".gz, .bz2, .xz or .zip); it holds {held or 'nothing'}"
                )
            for symbol in sorted(files) if everything else symbols:
                if symbol not in files:
                    raise SourceError(
                        f"{self.path}: no file for symbol {symbol!r} (have {sorted(files)[:10]})"
                    )
                yield partial(read, symbol, files[symbol])
        else:
            for raw in self._one_file(symbols, everything):
                yield partial(_delivered, raw)

    def _raw(self, symbol: str, uri: str) -> RawBars:
        read = self._read(uri)
        return RawBars(symbol, uri, self._symbol_frame(symbol, read), sha256_bytes(read.data))

    def _symbol_frame(self, symbol: str, read: _File) -> pd.DataFrame:
        """:meth:`_frame` of the file of one symbol (named by the file, in a folder or a template)."""
        frame = self._frame(read)
        if SYMBOL not in frame.columns:
            return frame
        held = sorted(frame[SYMBOL].dropna().astype(str).unique())
        if held != [symbol]:
            raise SourceError(
                f"{read.uri}: the file of symbol {symbol!r} holds the bars of {held[:10]}: give this file "
                "alone as data.path (a file of many symbols), or one file per symbol"
            )
        return frame.drop(columns=[SYMBOL])

    def _clean_or_raw(self, symbol: str, uri: str) -> Fetched:
        """A clean file's bars as arrays, checked (no frame built); any other file's as a frame."""
        read = self._read(uri)
        if read.table is not None and (clean := clean_columns(read.table, uri, self.fmt)) is not None:
            stamps, prices, self.readings[uri] = clean
            self.readings[uri].notes[:0] = _dialect_notes(read.dialect)
            return CleanBars(symbol, uri, stamps, prices, sha256_bytes(read.data))
        return RawBars(symbol, uri, self._symbol_frame(symbol, read), sha256_bytes(read.data))

    def _one_file(self, symbols: Sequence[str], everything: bool) -> Iterator[RawBars]:
        read = self._read(self.path)
        frame, digest = self._frame(read), sha256_bytes(read.data)
        if SYMBOL not in frame.columns:
            if everything:
                symbols = [symbol_of(self.path)]
            if len(symbols) != 1:
                raise SourceError(
                    f"{self.path}: no {SYMBOL!r} column, so it holds one symbol, not {list(symbols)}"
                )
            yield RawBars(symbols[0], self.path, frame, digest)
            return
        groups = dict(iter(frame.groupby(frame[SYMBOL].astype(str), sort=True)))
        for symbol in sorted(groups) if everything else symbols:
            if symbol not in groups:
                raise SourceError(f"{self.path}: no rows for symbol {symbol!r} (have {sorted(groups)[:10]})")
            yield RawBars(symbol, self.path, groups[symbol].drop(columns=[SYMBOL]), digest)

    def _read(self, uri: str) -> _File:
        """The file's bytes (decompressed, for a compressed file: :mod:`rsc.data.files`), its CSV
        dialect and, where pyarrow reads it as pandas would, its table."""
        try:
            data = decompressed(uri, self.storage.read_bytes(uri))
        except FileNotFoundError as error:
            raise SourceError(f"{uri}: file not found") from error
        parquet = self._parquet(uri)
        dialect = COMMA if parquet else sniff(data)
        with _readable(uri, parquet):
            if parquet:
                table = pq.read_table(io.BytesIO(data))
            elif has_ticker_header(data):
                table = None  # pandas reads the header rows (rsc.data.ticker_csv)
            else:
                table = read_csv_table(data, self.fmt.date_format is None, dialect)
        return _File(uri, data, parquet, dialect, table)

    def _parquet(self, uri: str) -> bool:
        name = bare_name(uri)
        return name.endswith(".parquet") or (not name.endswith(".csv") and self.default_format == "parquet")

    def _frame(self, read: _File) -> pd.DataFrame:
        """The file's bars in the bar schema's columns (:func:`to_bar_columns`), as pandas reads the file."""
        with _readable(read.uri, read.parquet):
            frame, notes = self._as_read(read)
        frame, self.readings[read.uri] = to_bar_columns(frame, read.uri, self.fmt)
        self.readings[read.uri].notes[:0] = notes
        return frame

    def _as_read(self, read: _File) -> tuple[pd.DataFrame, list[str]]:
        """The file as a frame, before its columns are mapped, and notes on how it was read."""
        if read.parquet:
            assert read.table is not None, "a Parquet file is always read as a table"
            frame = read.table.to_pandas()
            if isinstance(frame.index, pd.RangeIndex):
                return frame, []
            if TIMESTAMP in match_columns(list(frame.columns), read.uri, self.fmt):
                return frame.reset_index(drop=True), []  # the columns hold the stamps
            return frame.reset_index(), []  # a frame stored with its dates as the index
        if read.table is not None:  # numbers with digit groups (1,234.5) are text to pyarrow
            return grouped_numbers(read.table.to_pandas(), read.dialect), _dialect_notes(read.dialect)
        if has_ticker_header(read.data):
            frame, tickers = read_ticker_csv(read.data)
            return frame, [f"header rows of prices and tickers (yfinance): {tickers}"]
        return pandas_csv(read.data, read.dialect), _dialect_notes(read.dialect)


class _File(NamedTuple):
    """One file as read: its bytes, whether it is Parquet, its CSV dialect (:data:`COMMA` for
    Parquet) and its Arrow table (None: pandas reads it)."""

    uri: str
    data: bytes
    parquet: bool
    dialect: CsvDialect
    table: pa.Table | None


def _dialect_notes(dialect: CsvDialect) -> list[str]:
    words = dialect.describe()
    return [] if words is None else [f"CSV dialect: {words} (detected)"]


_READ_ERRORS = (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError, OSError)


@contextmanager
def _readable(uri: str, parquet: bool) -> Iterator[None]:
    """A reader's error as a :class:`SourceError` naming the file."""
    try:
        yield
    except _READ_ERRORS as error:
        kind = "Parquet" if parquet else "CSV"
        raise SourceError(f"{uri}: not a readable {kind} file: {error}") from error


def read_csv_table(data: bytes, parse_times: bool = True, dialect: CsvDialect = COMMA) -> pa.Table | None:
    """A CSV file read by pyarrow's multi-threaded reader, typed as ``pandas.read_csv`` types it.

    Numbers and booleans are typed as pandas types them. With ``parse_times``, ISO 8601 dates and
    stamps written in UTC (``Z``, ``+00:00``) are parsed by pyarrow as the file is read (in C++, the
    instants the loader's own parse gives). Any other date or time column stays text, as pandas leaves
    it, for the loader (local zones keep their calendar date, naive intraday stamps need
    ``data.timezone``, day-first dates the settings). A file pyarrow reads differently (duplicate or
    empty column names, a column typed by its first block only, a ragged row, no rows) gives None:
    pandas reads it, so that its result and its errors are pandas' own.
    """
    if dialect.thousands:  # pyarrow reads no digit groups
        return None
    # Stamps with a time of day are not typed by the reader (a strptime format nothing matches); dates are.
    convert = pcsv.ConvertOptions(
        timestamp_parsers=["\x00"], strings_can_be_null=True, decimal_point=dialect.decimal
    )
    parse = pcsv.ParseOptions(delimiter=dialect.delimiter)
    try:
        table = pcsv.read_csv(io.BytesIO(data), parse_options=parse, convert_options=convert)
    except pa.ArrowInvalid:
        return None
    names = table.column_names
    if not table.num_rows or len(set(names)) < len(names) or "" in names:
        return None
    for i, kind in enumerate(table.schema.types):
        given = column = table.column(i)
        if pa.types.is_null(kind):  # an empty column: pandas reads NaN
            column = column.cast(pa.float64())
        elif parse_times and pa.types.is_date(kind):
            column = column.cast(pa.timestamp("ns"))
        elif pa.types.is_date(kind) or pa.types.is_time(kind):
            column = column.cast(pa.string())
        elif parse_times and pa.types.is_string(kind):
            column = _utc_stamps(column)
        if column is not given:
            table = table.set_column(i, names[i], column)
    return table


def _utc_stamps(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Text stamps parsed as UTC when every one is written in UTC; any other text as it is."""
    first = column[0].as_py()
    if column.null_count or not isinstance(first, str) or not re.search(_UTC_SUFFIX, first):
        return column
    if not pc.all(pc.match_substring_regex(column, _UTC_SUFFIX)).as_py():
        return column
    try:
        return pc.cast(column, pa.timestamp("ns", "UTC"))
    except pa.ArrowInvalid:  # not ISO 8601 after all: the loader parses it
        return column


def _delivered(raw: RawBars) -> RawBars:
    return raw


def fetch_calls(source: BarSource, symbols: Sequence[str]) -> Iterator[Callable[[], Fetched]]:
    """``source.fetch(symbols)`` as one call per symbol, for a pool of workers to run: the calls of
    files read one symbol's file each (a clean file's bars come checked, as :class:`CleanBars`);
    other sources deliver in order, as they fetch."""
    if isinstance(source, FileSource):
        return source.readers(symbols, clean=True)
    return (partial(_delivered, raw) for raw in source.fetch(symbols))


def make_source(settings: DataSettings, storage: Storage) -> BarSource:
    """The configured source (explicit choices, no reflection)."""
    if settings.source == "bundled":
        return BundledSource()
    if settings.source == "yfinance":
        yahoo = settings.yfinance
        if settings.price is not None:  # the one setting for every source wins over Yahoo's own
            yahoo = yahoo.model_copy(update={"adjusted": settings.price == "adj_close"})
        return YahooSource(yahoo, settings.start, settings.end)
    if not settings.path:
        raise SourceError(f"data.path is required for data.source={settings.source!r}")
    return FileSource(settings.path, storage, settings.source, file_format(settings))


def file_format(settings: DataSettings) -> FileFormat:
    """The ``data`` settings that say how to read a file's columns."""
    return FileFormat(
        columns=dict(settings.columns),
        price=settings.price or "close",
        layout=settings.layout,
        date_format=settings.date_format,
        timezone=settings.timezone,
    )


def clip_dates(frame: pd.DataFrame, start: date, end: date) -> pd.DataFrame:
    """Rows with ``start <= timestamp <= end`` (dates inclusive), in the canonical column order
    (``symbol`` only where the frame has one)."""
    stamps = frame[TIMESTAMP].to_numpy("datetime64[ns]")
    after = np.datetime64(end, "ns") + np.timedelta64(1, "D")
    keep = (stamps >= np.datetime64(start, "ns")) & (stamps < after)
    columns = [TIMESTAMP, *([SYMBOL] if SYMBOL in frame.columns else []), *BAR_COLUMNS[1:]]
    if keep.all():
        return frame[columns] if list(frame.columns) != columns else frame
    return frame.loc[keep, columns].reset_index(drop=True)
