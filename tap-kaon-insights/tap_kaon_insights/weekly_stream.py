"""Weekly tables: which weeks to read, read in parallel, emitted in week order; a table only declares.

A weekly table names its endpoint, keys and schema, and two functions: ``check_payload`` (one week's answer ->
what its rows need, or a one-line error) and ``build_rows`` (one checked week -> rows). :class:`WeeklyStream`
does the rest.

Bookmark: the last week synced. Every run re-reads from the bookmarked week on, since the current week is still
filling up; rows are keyed so warehouses upsert them.

The weeks read are the listed ones plus the current (filling) week: the vendor document says ``weeks`` lists
"weeks for which full data is available", which may or may not include the week still filling up. When the last
listed week is this UTC week the list includes it; otherwise one ``hits`` call without ``week`` (the vendor
document: "defaulting to the current week") names the server's current week.
"""

from __future__ import annotations

import threading
import typing as t
from collections.abc import Callable, Iterable, Iterator, Mapping

from typing_extensions import override

from tap_kaon_insights.client import KaonNotFoundError, KaonStream
from tap_kaon_insights.connector_common.concurrency import ordered_map
from tap_kaon_insights.payloads import PayloadChecker, checked_weeks
from tap_kaon_insights.records import Row, weekly_row
from tap_kaon_insights.week_numbers import this_week

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context


class WeekList:
    """The weeks the API lists for the client, fetched once per run and shared by all streams."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._weeks: list[dict[str, t.Any]] | None = None
        self._current: dict[str, t.Any] | None = None

    def entries(self, stream: KaonStream) -> list[dict[str, t.Any]]:
        """``[{week, weekname}]`` ascending, checked."""
        with self._lock:
            if self._weeks is None:
                self._weeks = checked_weeks(stream.endpoint_name("weeks"), stream.fetch("weeks"))
                stream.logger.info("Kaon Insights lists %d weeks", len(self._weeks))
            return self._weeks

    def numbers(self, stream: KaonStream) -> list[int]:
        """The listed week numbers and the current week, ascending."""
        listed = [entry["week"] for entry in self.entries(stream)]
        current = self.current(stream)["week"]
        return listed if current in listed else sorted({*listed, current})

    def current(self, stream: KaonStream) -> dict[str, t.Any]:
        """``{week, weekname}`` of the week still filling up: the last listed one, or the server's current week."""
        entries = self.entries(stream)
        with self._lock:
            if self._current is None:
                self._current = self._find_current(stream, entries)
            return self._current

    @staticmethod
    def _find_current(stream: KaonStream, entries: list[dict[str, t.Any]]) -> dict[str, t.Any]:
        if entries and entries[-1]["week"] >= this_week():
            return entries[-1]
        # the list may leave the filling week out: the server names its current week
        payload = stream.fetch("hits")
        week = PayloadChecker(stream.endpoint_name("hits")).field(payload, "week", int)
        weekname = payload.get("weekname")
        stream.logger.info("Kaon Insights' current week is %d (the last listed week: %s)", week, entries[-1:])
        return {"week": week, "weekname": weekname if isinstance(weekname, str) else None}


#: ``check_payload``: one week's answer, checked, as what ``build_rows`` needs (``payloads.py``).
PayloadCheck = Callable[[PayloadChecker, Mapping[str, t.Any]], t.Any]
#: ``build_rows``: the rows of one checked week, from the columns every weekly row has (``records.py``).
RowBuilder = Callable[[Row, t.Any], Iterator[Row]]


class WeeklyStream(KaonStream):
    """A table read with one call per week: a subclass declares ``check_payload`` and ``build_rows``."""

    replication_key = "week"
    is_sorted = True
    check_sorted = True
    # Plain functions as class attributes: called through ``type(self)`` so they are not bound to the stream.
    check_payload: t.ClassVar[PayloadCheck]
    build_rows: t.ClassVar[RowBuilder]
    #: The setting (in MB) that bounds the fetched answers held at once; None: 2 x max_concurrency weeks ahead.
    memory_budget_setting: t.ClassVar[str | None] = None
    #: Also read the weeks before the first listed one, back to the app's launch (``hits``: see ``history_before``).
    reads_weeks_before_listed: t.ClassVar[bool] = False

    @property
    def memory_budget_bytes(self) -> float | None:
        """Most bytes of fetched answers held at once (from ``memory_budget_setting``), or None."""
        if self.memory_budget_setting is None:
            return None
        return float(getattr(self.settings, self.memory_budget_setting)) * 1024 * 1024

    def bookmarked_week(self, context: Context | None) -> int | None:
        """The last week synced by an earlier run, if any."""
        state = self.get_context_state(context)
        if state.get("replication_key") != self.replication_key or state.get("replication_key_value") is None:
            return None
        return int(state["replication_key_value"])

    def start_week(self, context: Context | None) -> int:
        """The first week to read: the bookmark (re-read) or ``start_week``."""
        bookmark = self.bookmarked_week(context)
        return self.settings.start_week if bookmark is None else bookmark

    def weeks_to_sync(self, context: Context | None) -> list[int]:
        """Listed weeks and the current week from the start week to ``end_week`` (or the current week), ascending."""
        first, last = self.start_week(context), self.settings.end_week
        listed = self.kaon_tap.week_list.numbers(self)
        return [week for week in listed if week >= first and (last is None or week <= last)]

    @override
    def get_records(self, context: Context | None) -> Iterator[Row]:
        """Fetch weeks with bounded concurrency, yield their rows in week order (earlier history first)."""
        if self.reads_weeks_before_listed:
            listed = self.kaon_tap.week_list.numbers(self)
            if listed and self.bookmarked_week(context) is None:
                for week, payload in self.history_before(listed[0]):
                    yield from self.week_records(week, payload)
        for week, payload in self.fetched_weeks(self.weeks_to_sync(context)):
            yield from self.week_records(week, payload)

    def history_before(self, first_listed: int) -> list[tuple[int, t.Any]]:
        """The checked weeks from ``start_week`` to before ``first_listed`` that have data, ascending.

        The vendor document says hit counts go back "to whenever the application first went live", before the
        weeks ``weeks`` lists: on a run without a bookmark, weeks are read newest first until the server answers
        404 (no data: before the launch), then emitted oldest first. A week without hits does not stop the walk;
        ``start_week`` bounds it.
        """
        last = first_listed - 1 if self.settings.end_week is None else min(first_listed - 1, self.settings.end_week)
        history = []
        for week in range(last, self.settings.start_week - 1, -1):
            try:
                history.append((week, self.fetch_week(week)))
            except KaonNotFoundError:
                self.logger.info("%s: no data before week %d (HTTP 404 for week %d)", self.name, week + 1, week)
                break
        if history:
            self.logger.info("%s: %d weeks before the first listed week %d", self.name, len(history), first_listed)
        return history[::-1]

    def fetched_weeks(self, weeks: list[int]) -> Iterable[tuple[int, t.Any]]:
        """``(week, fetch_week(week))`` in week order, ``max_concurrency`` at once (fewer for big answers)."""
        budget = self.memory_budget_bytes
        if budget is None:
            yield from ordered_map(self._fetch_week, weeks, self.settings.max_concurrency)
            return
        # The first week is fetched alone to learn the size; then each batch's parallelism fits the budget for
        # the largest week seen so far (up to 2 x workers answers are held: emitted, fetched and in flight).
        largest, index = 0, 0
        while index < len(weeks):
            workers = self._workers_within_budget(budget, largest) if index else 1
            batch = weeks[index : index + workers * 4]
            for week, payload in ordered_map(self._fetch_week, batch, workers, prefetch=workers):
                largest = max(largest, len(payload))
                yield week, payload
            index += len(batch)

    def _workers_within_budget(self, budget: float, answer_size: int) -> int:
        fitting = int(budget // max(answer_size, 1) // 2)
        return max(1, min(self.settings.max_concurrency, fitting))

    def _fetch_week(self, week: int) -> tuple[int, t.Any]:
        return week, self.fetch_week(week)

    def fetch_week(self, week: int) -> t.Any:
        """Fetch one week and check it with ``check_payload`` (runs in a worker thread)."""
        return type(self).check_payload(self.checker(week), self.fetch(self.endpoint, week=week))

    def week_records(self, week: int, payload: t.Any) -> Iterator[Row]:
        """One checked week's rows, from ``build_rows``."""
        return type(self).build_rows(self.base_row(week), payload)

    def checker(self, week: int) -> PayloadChecker:
        """Checks of this stream's answer for ``week``."""
        return PayloadChecker(self.endpoint_name(), week)

    def base_row(self, week: int) -> Row:
        """The columns every weekly row starts with."""
        return weekly_row(self.settings.client, week)


class ListedWeeksStream(WeeklyStream):
    """The listed weeks and the week still filling up (``is_current``), listed or not: no per-week calls."""

    @override
    def get_records(self, context: Context | None) -> Iterator[Row]:
        """One row per listed week (and the current week) from the bookmark on."""
        week_list = self.kaon_tap.week_list
        current = week_list.current(self)
        entries = {entry["week"]: entry for entry in week_list.entries(self)}
        entries.setdefault(current["week"], current)
        for week in self.weeks_to_sync(context):
            is_current = week == current["week"]
            yield {**self.base_row(week), "weekname": entries[week]["weekname"], "is_current": is_current}
