"""CSV dialects: a file's delimiter and decimal mark, read from its first lines, and numbers written
with digit groups.

Spreadsheets set to many European locales export ``Date;Open;High;...`` with decimal commas
(``100,25``, or ``1.234,5`` with a dot between digit groups); other tools write tab-separated files.
A header that holds a comma is the usual comma-separated file, decided by its first line alone.
Otherwise the first of ``;``, tab and ``|`` in the header is the delimiter, and a number written with a
decimal comma in the first rows makes the comma the decimal mark of the whole file, unless a number
there has a decimal point (``101.5``): then a comma groups digits (``"987,654"``). Quoted text in the
header (``"Close, EUR"``) is one column name, whatever it holds.

Numbers with digit groups (``"1,234.56"`` quoted in a comma-separated file, ``1.234,5`` beside a
decimal comma) are read column by column (:func:`grouped_numbers`): a column only when every value in
it is such a number. pandas' own ``thousands`` option would read dates written ``02.01.2015`` as the
number 2012015.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import pandas as pd

_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}
_DECIMAL_COMMA = re.compile(r"^[-+]?(\d+|\d{1,3}(\.\d{3})+),\d+$")
_DECIMAL_POINT = re.compile(r"^[-+]?\d+\.\d+$")  # 101.5 (1.234 could be a dotted digit group)
_QUOTED = re.compile(rb'"[^"]*"')
_GROUPED = re.compile(r"^[-+]?\d{1,3}(\.\d{3})+,\d+$")  # 1.234,5: a dot between digit groups
_GROUPED_BY_DOTS = re.compile(r"^[-+]?\d{1,3}(\.\d{3})+$")  # 1.234 or 1.234.567
_SNIFFED_ROWS = 20


@dataclass(frozen=True)
class CsvDialect:
    delimiter: str = ","
    decimal: str = "."
    thousands: str | None = None  # the mark between digit groups, when the file writes one

    def describe(self) -> str | None:
        """The dialect in words (None for the usual comma-separated file with decimal points)."""
        if self == COMMA:
            return None
        words = f"{_DELIMITERS.get(self.delimiter, repr(self.delimiter))}-separated"
        if self.decimal == ",":
            words += ", decimal comma"
        if self.thousands:
            words += f", {self.thousands!r} between digit groups"
        return words


COMMA = CsvDialect()


def sniff(data: bytes) -> CsvDialect:
    """The dialect of the CSV text ``data`` (see the module docstring)."""
    end = data.find(b"\n")
    header = _QUOTED.sub(b"", data[: end if end >= 0 else len(data)])  # "Close, EUR" is one name
    if b"," in header or not any(d.encode() in header for d in _DELIMITERS):
        return COMMA
    text = data[:65536].decode("utf-8", errors="ignore").lstrip("\ufeff")
    rows = [line for line in text.splitlines() if line.strip()][: _SNIFFED_ROWS + 1]
    delimiter = next(d for d in _DELIMITERS if d in rows[0])
    fields = [field.strip().strip('"') for row in rows[1:] for field in row.split(delimiter)]
    points = any(_DECIMAL_POINT.match(f) and not _GROUPED_BY_DOTS.match(f) for f in fields)
    if points or not any(_DECIMAL_COMMA.match(field) for field in fields):
        return CsvDialect(delimiter)  # a comma beside decimal points groups digits: "987,654"
    grouped = any(_GROUPED.match(field) for field in fields)
    return CsvDialect(delimiter, ",", "." if grouped else None)


def pandas_csv(data: bytes, dialect: CsvDialect = COMMA) -> pd.DataFrame:
    """``pandas.read_csv`` of CSV text in ``dialect``, numbers with digit groups or a decimal comma read
    as numbers (with a decimal comma every column is read as text first: pandas knows only the dot)."""
    text = None if dialect.decimal == "." else str
    return grouped_numbers(pd.read_csv(io.BytesIO(data), sep=dialect.delimiter, dtype=text), dialect)


def grouped_numbers(frame: pd.DataFrame, dialect: CsvDialect) -> pd.DataFrame:
    """``frame`` with each text column whose every value is a number in ``dialect`` (digit groups
    allowed: ``1,234.5``, or ``1.234,5`` with a decimal comma) as numbers."""
    group = "." if dialect.decimal == "," else ","
    g, d = re.escape(group), re.escape(dialect.decimal)
    number = rf"^[-+]?(\d+|\d{{1,3}}({g}\d{{3}})+)({d}\d+)?$"
    for name in frame.columns:
        column = frame[name]
        if column.dtype != object and not isinstance(column.dtype, pd.StringDtype):
            continue
        text = column.astype("string").str.strip()
        given = text.notna() & text.ne("")
        if not given.any() or not re.match(number, text[given].iloc[0]):
            continue  # one look at the first value spares the scan of a text column (stamps, say)
        if text[given].str.match(number).all():
            digits = text.str.replace(group, "", regex=False).str.replace(dialect.decimal, ".", regex=False)
            frame[name] = pd.to_numeric(digits.where(given))
    return frame
