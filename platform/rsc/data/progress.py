"""How long loops report progress without depending on a UI: a ``track`` callable is passed in.

The CLI passes one that draws rich progress bars; library callers and pipeline steps pass nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar

T = TypeVar("T")


class Track(Protocol):
    def __call__(self, items: Iterable[T], description: str, total: int | None = None) -> Iterable[T]: ...


def untracked(items: Iterable[T], description: str, total: int | None = None) -> Iterable[T]:
    """No progress display: the items, as they are."""
    return items
