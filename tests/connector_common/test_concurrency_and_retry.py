"""Ordered bounded concurrency and Retry-After parsing."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from connector_common.concurrency import ordered_map
from connector_common.retry import retry_after_seconds


def test_ordered_map_keeps_input_order_and_bounds_workers() -> None:
    active = 0
    peak = 0
    lock = threading.Lock()

    def slow_square(n: int) -> int:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.01 * ((n * 7) % 5))  # finish out of order
        with lock:
            active -= 1
        return n * n

    assert list(ordered_map(slow_square, range(40), max_workers=4)) == [n * n for n in range(40)]
    assert 1 < peak <= 4


def test_ordered_map_inline_when_one_worker() -> None:
    threads: set[str] = set()

    def record(n: int) -> int:
        threads.add(threading.current_thread().name)
        return n

    assert list(ordered_map(record, range(5), max_workers=1)) == [0, 1, 2, 3, 4]
    assert threads == {threading.current_thread().name}


def test_ordered_map_raises_in_order_and_stops() -> None:
    def fail_on_three(n: int) -> int:
        if n == 3:
            raise ValueError("item 3")
        return n

    results = ordered_map(fail_on_three, range(10), max_workers=3)
    assert [next(results), next(results), next(results)] == [0, 1, 2]
    with pytest.raises(ValueError, match="item 3"):
        next(results)


@pytest.mark.parametrize(
    ("header", "expected"),
    [("7", 7.0), ("0.5", 0.5), ("-3", 0.0), ("100000", 300.0), ("soon", None)],
)
def test_retry_after_seconds(header: str, expected: float | None) -> None:
    assert retry_after_seconds({"Retry-After": header}) == expected


def test_retry_after_http_date_and_missing() -> None:
    later = datetime.now(timezone.utc) + timedelta(seconds=30)
    seconds = retry_after_seconds({"Retry-After": format_datetime(later, usegmt=True)})
    assert seconds is not None
    assert 25 <= seconds <= 30
    assert retry_after_seconds({}) is None
    assert retry_after_seconds(None) is None
