"""Bounded concurrency that keeps output in input order.

Streams fetch independent units (weeks, days) in parallel, but records and state
must leave the tap in order, so results are yielded in the order of the inputs and
at most ``max_workers * 2`` results are held in memory at once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


def ordered_map(
    fn: Callable[[In], Out],
    items: Iterable[In],
    max_workers: int,
    *,
    prefetch: int | None = None,
) -> Generator[Out, None, None]:
    """Yield ``fn(item)`` for each item, in input order, using up to ``max_workers`` threads.

    With ``max_workers <= 1`` it runs inline (no threads). An exception raised by ``fn``
    is re-raised when its item's turn comes; work not yet started is cancelled.
    """
    if max_workers <= 1:
        for item in items:
            yield fn(item)
        return
    window = prefetch if prefetch is not None else max_workers * 2
    pending: deque[Future[Out]] = deque()
    iterator = iter(items)
    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="fetch") as pool:
        try:
            for item in iterator:
                pending.append(pool.submit(fn, item))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
