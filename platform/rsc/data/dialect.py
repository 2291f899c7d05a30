"""CSV dialects: a file's delimiter and decimal mark, read from its first lines.

Spreadsheets set to many European locales export ``Date;Open;High;...`` with decimal commas
(``100,25``, or ``1.234,5`` with a dot between digit groups); other tools write tab-separated files.
A header that holds a comma is the usual comma-separated file, decided by its first line alone.
Otherwise the first of ``;``, tab and ``|`` in the header is the delimiter, and a number written with a
decimal comma in the first rows makes the comma the decimal mark of the whole file. In such a file a
dot only ever groups digits, and dates written ``02.01.2015`` must stay text: pandas' own
``thousands`` option would read them as the number 2012015, so numbers are converted column by column,
a column only when every value in it is a number.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import pandas as pd

_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}
_DECIMAL_COMMA = re.compile(r"^[-+]?(\d+|\d{1,3}(\.\d{3})+),\d+$")
_GROUPED = re.compile(r"^[-+]?\d{1,3}(\.\d{3})+,\d+$")  # 1.234,5: a dot between digit groups
_COMMA_NUMBER = r"^[-+]?(\d+|\d{1,3}(\.\d{3})+)(,\d+)?$"  # 12 1.234 1.234,5 12,5
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
    header = data[: end if end >= 0 else len(data)]
    if b"," in header or not any(d.encode() in header for d in _DELIMITERS):
        return COMMA
    text = data[:65536].decode("utf-8", errors="ignore").lstrip("\ufeff")
    rows = [line for line in text.splitlines() if line.strip()][: _SNIFFED_ROWS + 1]
    delimiter = next(d for d in _DELIMITERS if d in rows[0])
    fields = [field.strip().strip('"') for row in rows[1:] for field in row.split(delimiter)]
    if not any(_DECIMAL_COMMA.match(field) for field in fields):
        return CsvDialect(delimiter)
    grouped = any(_GROUPED.match(field) for field in fields)
    return CsvDialect(delimiter, ",", "." if grouped else None)


def pandas_csv(data: bytes, dialect: CsvDialect = COMMA) -> pd.DataFrame:
    """``pandas.read_csv`` of CSV text in ``dialect``."""
    if dialect.decimal == ".":
        return pd.read_csv(io.BytesIO(data), sep=dialect.delimiter)
    frame = pd.read_csv(io.BytesIO(data), sep=dialect.delimiter, dtype=str)
    for name in frame.columns:
        text = frame[name].str.strip()
        given = text.notna() & text.ne("")
        if given.any() and text[given].str.match(_COMMA_NUMBER).all():
            numbers = text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
            frame[name] = pd.to_numeric(numbers.where(given))
    return frame
