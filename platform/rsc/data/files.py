"""Bar files by name: which files hold bars, the symbol a file is named after, compressed files.

Histories at real size travel compressed: ``SPY.csv.gz``, ``.bz2``, ``.xz``, or a zip archive holding
one CSV file (``EURUSD.zip``, ``EURUSD.csv.zip``). Such a file is read as the CSV file it holds; its
symbol is its name without the suffixes (``SPY``), and the lineage hash is that of the CSV text, so a
file hashes the same compressed or not.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zipfile
import zlib
from collections.abc import Callable
from pathlib import PurePosixPath
from urllib.parse import unquote

from rsc.data.raw import SourceError

FORMATS = (".csv", ".parquet")


def _only_member(data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        # Folders, and what macOS's Finder adds (__MACOSX/, ._name), are not files of bars.
        names = [m for m in archive.namelist() if not m.endswith("/") and not m.startswith("__MACOSX/")]
        members = [m for m in names if not PurePosixPath(m).name.startswith(".")]
        if len(members) != 1:
            raise SourceError(f"a zip archive of bars holds one CSV file, not {members}")
        return archive.read(members[0])


COMPRESSIONS: dict[str, Callable[[bytes], bytes]] = {
    ".gz": gzip.decompress,
    ".bz2": bz2.decompress,
    ".xz": lzma.decompress,
    ".zip": _only_member,
}


def _compression(uri: str) -> str | None:
    return next((suffix for suffix in COMPRESSIONS if uri.endswith(suffix)), None)


def bare_name(uri: str) -> str:
    """``uri`` without a compression suffix (a zip archive's name gets ``.csv``)."""
    suffix = _compression(uri)
    if suffix is None:
        return uri
    bare = uri.removesuffix(suffix)
    return bare if suffix != ".zip" or bare.endswith(FORMATS) else f"{bare}.csv"


def is_bar_file(uri: str) -> bool:
    return bare_name(uri).endswith(FORMATS)


def symbol_of(uri: str) -> str:
    """The symbol a file is named after: ``SPY`` for ``SPY.csv``, ``SPY.csv.gz`` and ``SPY.zip``;
    URL-quoted names (``%5EGSPC.csv``) are unquoted."""
    return unquote(PurePosixPath(bare_name(uri)).stem)


def decompressed(uri: str, data: bytes) -> bytes:
    """The bytes of the file ``uri`` names, decompressed when its name says it is compressed."""
    suffix = _compression(uri)
    if suffix is None:
        return data
    try:
        return COMPRESSIONS[suffix](data)
    except (OSError, EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile, NotImplementedError) as error:
        raise SourceError(f"{uri}: not a readable {suffix} file: {error}") from error
    except SourceError as error:
        raise SourceError(f"{uri}: {error}") from error
