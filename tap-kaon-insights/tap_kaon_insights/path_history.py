"""Per-path hit history (``hits?path=P``): one partition and one bookmark per configured path.

The first run reads a path's whole history (``start_week`` does not limit it: the API returns it back to the app's
launch), later runs from the bookmark. With ``hits_detail_country`` each week is one more call with
``detail=country`` and rows carry a ``countries`` object. The form of P the server knows (as listed or decoded)
is learned from the first path the two forms write differently (see :meth:`PathHistoryStream.fetch_path`).
"""

from __future__ import annotations

import typing as t
from collections.abc import Iterator

from typing_extensions import override

from tap_kaon_insights import payloads, records
from tap_kaon_insights.client import KaonNotFoundError
from tap_kaon_insights.connector_common.concurrency import ordered_map
from tap_kaon_insights.payloads import PayloadChecker
from tap_kaon_insights.records import Row
from tap_kaon_insights.settings import PATH_FORMS
from tap_kaon_insights.weekly_stream import WeeklyStream

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context


class PathHistoryStream(WeeklyStream):
    """The weekly hits of each configured path, from its bookmark on, in week order."""

    endpoint = "hits"

    #: The form of P the server knows (``settings.PATH_FORMS``), once a path that the forms tell apart proved it.
    path_form: str | None = None

    @property
    @override
    def partitions(self) -> list[dict[str, t.Any]] | None:
        """One partition per configured path."""
        return [{"path": path} for path in self.settings.paths]

    @override
    def start_week(self, context: Context | None) -> int:
        """The bookmark, or week 0 (the whole history)."""
        bookmark = self.bookmarked_week(context)
        return 0 if bookmark is None else bookmark

    @override
    def get_records(self, context: Context | None) -> Iterator[Row]:
        """The path's weeks from the bookmark on, in week order."""
        path = self.partition_value(context, "path", "paths", "paths")
        if path is None:
            return
        counts = self.weekly_counts(path, self.start_week(context))
        if not self.settings.hits_detail_country:
            for week in sorted(counts):
                yield records.path_row(self.base_row(week), path, counts[week])
            return
        details = ordered_map(
            lambda week: self._country_detail(path, week), sorted(counts), self.settings.max_concurrency
        )
        for week, (count, countries) in details:
            yield records.path_row(self.base_row(week), path, count, countries)

    def weekly_counts(self, path: str, first: int) -> dict[int, int]:
        """``{week: hits}`` of ``path`` from week ``first`` to ``end_week``, checked."""
        check = PayloadChecker(self.endpoint_name(), path=path)
        history = payloads.checked_hits(check, self.fetch_path(path), "week", int)
        last = self.settings.end_week
        return {
            hit["week"]: hit["count"]
            for hit in history
            if hit["week"] >= first and (last is None or hit["week"] <= last)
        }

    def _country_detail(self, path: str, week: int) -> tuple[int, tuple[int, dict[str, int]]]:
        check = PayloadChecker(self.endpoint_name(), week, path=path, detail="country")
        payload = self.fetch_path(path, week=week, detail="country")
        return week, payloads.checked_country_detail(check, payload, week)

    def fetch_path(self, path: str, **params: t.Any) -> dict[str, t.Any]:
        """``hits?path=P``: P in ``path_form`` (as listed, or decoded), or on its 404 in the other form, learned."""
        if self.path_form is not None:
            return self.fetch(self.endpoint, path=records.path_in_form(path, self.path_form), **params)
        first = self.settings.path_form
        other = next(form for form in PATH_FORMS if form != first)
        told_apart = records.path_in_form(path, first) != records.path_in_form(path, other)
        try:
            payload = self.fetch(self.endpoint, path=records.path_in_form(path, first), **params)
        except KaonNotFoundError as not_found:
            if not told_apart:
                raise
            try:
                payload = self.fetch(self.endpoint, path=records.path_in_form(path, other), **params)
            except KaonNotFoundError:
                raise not_found from None
            self.logger.warning("hits?path=P knows paths %s, not %s: set path_form", other, first)
            self.path_form = other
            return payload
        if told_apart:  # only a path the two forms write differently proves the form
            self.path_form = first
        return payload
