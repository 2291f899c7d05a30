"""Work over many symbols on every core, in order, with a bounded number of items in flight.

Threads, not processes: the per-symbol work is numpy and pyarrow calls on whole arrays, which release
the GIL, and threads share the read frames without pickling them. Results come back in input order
and at most ``ahead`` items are read before their results are taken, so memory stays bounded however
many symbols there are.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

WORKERS = os.cpu_count() or 1


def ordered_map(
    fn: Callable[[T], R], items: Iterable[T], workers: int = WORKERS, ahead: int | None = None
) -> Iterator[R]:
    """``map(fn, items)`` on ``workers`` threads; ``items`` is consumed at most ``ahead`` (default
    twice the workers) ahead of the results taken. One worker runs in the calling thread."""
    if workers <= 1:
        yield from map(fn, items)
        return
    pending: deque[Future[R]] = deque()
    limit = ahead or 2 * workers
    with ThreadPoolExecutor(workers, thread_name_prefix="rsc-data") as pool:
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= limit:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
