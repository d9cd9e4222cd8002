"""External-ID clickstreams: paging by timestamp, each record emitted once, under every reading of ``extid``.

Bookmark per external ID: ``replication_key_value`` (the last timestamp emitted) and ``records_at_bookmark`` (how
many records of that second were emitted), so a resumed run skips exactly those.

The vendor document leaves three things open, and the paging is exact under each without a setting:

- ``start`` inclusive (the contract) or exclusive: every follow-up page is asked from the last second read, and a
  page that does not begin with that second (which holds at least one record) proves ``start`` exclusive; the
  page is asked again from one second earlier, and so are all later pages.
- ``limit`` honoured or silently capped ("too-high a value could result in database timeouts"): a short page is
  not taken as the end. The end is proven only by a page with nothing new that is shorter than the longest page
  the server has sent (or, when no page was longer, by an empty page after the last second).
- a run of one second longer than a page: a page holding nothing but that already-read second is asked again with
  a larger limit (doubling, up to ``external_id_max_page_size``) only when the server filled the limit; when it
  did not (a silent cap) or the ceiling is reached, the tap stops with one line rather than lose records.
"""

from __future__ import annotations

import typing as t
from collections.abc import Iterator
from dataclasses import dataclass

from typing_extensions import override

from tap_kaon_insights.client import KaonError, KaonNotFoundError, KaonStream
from tap_kaon_insights.payloads import PayloadChecker, checked_clicks
from tap_kaon_insights.records import Row, click_row
from tap_kaon_insights.settings import EXTERNAL_ID_PARAMETERS
from tap_kaon_insights.week_numbers import unix_to_iso

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context


@dataclass
class PagingReading:
    """What one run has learned of the server's paging (shared by the external IDs of a run)."""

    start_exclusive: bool = False
    longest_page: int = 0
    id_parameter: str | None = None


class ClickstreamStream(KaonStream):
    """One partition per configured external ID, read from its bookmark on."""

    endpoint = "extid"
    replication_key = "timestamp_unix"
    is_sorted = True

    @override
    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self.reading = PagingReading()

    @property
    @override
    def partitions(self) -> list[dict[str, t.Any]] | None:
        """One partition per configured external ID."""
        return [{"external_id": external_id} for external_id in self.settings.external_ids]

    @override
    def get_records(self, context: Context | None) -> Iterator[Row]:
        """Page through the clickstream from the bookmark, emitting each record once."""
        external_id = self.partition_value(context, "external_id", "external_ids", "external IDs")
        if external_id is None:
            return
        state = self.get_context_state(context)
        has_bookmark = (
            state.get("replication_key") == self.replication_key and state.get("replication_key_value") is not None
        )
        last_second = int(state["replication_key_value"]) if has_bookmark else None
        emitted_in_second = int(state.get("records_at_bookmark", 0)) if has_bookmark else 0
        page_size = limit = self.settings.external_id_page_size
        while True:
            records = self.page_from(external_id, last_second, limit)
            already = min(emitted_in_second, leading_run(records, last_second))
            new = records[already:]
            page_second = last_second
            if not new:
                if not self._more_in_second(external_id, last_second, records, limit):
                    return
                limit = self._larger_limit(external_id, t.cast("int", last_second), limit)
                continue
            for record in new:
                if record["timestamp"] == last_second:
                    emitted_in_second += 1
                else:
                    last_second, emitted_in_second = record["timestamp"], 1
                state["records_at_bookmark"] = emitted_in_second
                yield click_row(self.settings.client, external_id, record, emitted_in_second - 1)
            if last_second != page_second:  # past the long second: back to the advised limit
                limit = page_size

    def page_from(self, external_id: str, second: int | None, limit: int) -> list[dict[str, t.Any]]:
        """Records from ``second`` on (all of that second included), whichever reading of ``start`` the server has."""
        if second is None:
            return self._page(external_id, None, limit)
        if self.reading.start_exclusive:
            return self._page(external_id, second - 1, limit)
        records = self._page(external_id, second, limit)
        if records and records[0]["timestamp"] == second:
            return records
        # the second already read holds a record: an inclusive start would have sent it first
        self.reading.start_exclusive = True
        self.logger.info("Kaon Insights reads extid's start as exclusive: asking from one second earlier")
        return self._page(external_id, second - 1, limit)

    def _more_in_second(
        self, external_id: str, second: int | None, records: list[dict[str, t.Any]], limit: int
    ) -> bool:
        """After a page with nothing new: False when the end is proven, True when ``second`` may hold more."""
        if not records:
            return False
        if len(records) >= limit:
            return True
        if len(records) < self.reading.longest_page:
            return False
        # as long as the longest page: the server may cap pages silently, or the data ends here
        after = None if second is None else (second if self.reading.start_exclusive else second + 1)
        if after is not None and not self._page(external_id, after, limit):
            return False
        raise KaonError(
            f"Kaon Insights sends at most {len(records)} records per extid call (limit {limit} asked), and external "
            f"id {external_id!r} has at least that many in the one second {unix_to_iso(t.cast('int', second))}, so "
            "paging cannot pass it: ask Kaon to raise the server's cap (external_id_max_page_size cannot help)"
        )

    def _larger_limit(self, external_id: str, second: int, limit: int) -> int:
        ceiling = max(self.settings.external_id_max_page_size, self.settings.external_id_page_size)
        if limit >= ceiling:
            raise KaonError(
                f"Kaon Insights holds more than {limit} records of external id {external_id!r} in the one second "
                f"{unix_to_iso(second)}, so paging cannot advance: raise external_id_max_page_size"
            )
        self.logger.info("External id %r: one second fills a page of %d; asking for %d", external_id, limit, limit * 2)
        return min(limit * 2, ceiling)

    def _page(self, external_id: str, start: int | None, limit: int) -> list[dict[str, t.Any]]:
        records = self.fetch_page(external_id, start, limit)
        self.reading.longest_page = max(self.reading.longest_page, len(records))
        return records

    def fetch_page(self, external_id: str, start: int | None, limit: int) -> list[dict[str, t.Any]]:
        """One page of records from ``start``, checked."""
        params: dict[str, t.Any] = {"limit": limit}
        if start is not None:
            params["start"] = start
        name, payload = self._fetch_with_id(external_id, params)
        return checked_clicks(PayloadChecker(self.endpoint_name(), **{name: external_id, **params}), payload)

    def _fetch_with_id(self, external_id: str, params: dict[str, t.Any]) -> tuple[str, dict[str, t.Any]]:
        """The answer and the parameter naming the external ID: the setting, or on its 404 another name."""
        if self.reading.id_parameter is not None:
            name = self.reading.id_parameter
            return name, self.fetch(self.endpoint, **{name: external_id, **params})
        configured = self.settings.external_id_parameter
        names = [configured, *(name for name in EXTERNAL_ID_PARAMETERS if name != configured)]
        for name in names:
            try:
                payload = self.fetch(self.endpoint, **{name: external_id, **params})
            except KaonNotFoundError:
                self.logger.info("Kaon Insights answered 404 to extid with the parameter %r", name)
                continue
            self.reading.id_parameter = name
            if name != configured:
                self.logger.warning(
                    "extid names the external ID %r, not %r: set external_id_parameter", name, configured
                )
            return name, payload
        raise KaonError(
            f"Kaon Insights answered 404 to extid for external id {external_id!r} under each parameter name "
            f"{names}: check client, external_ids and external_id_parameter"
        )


def leading_run(records: list[dict[str, t.Any]], second: int | None) -> int:
    """How many records at the start of a page belong to ``second``."""
    count = 0
    for record in records:
        if record["timestamp"] != second:
            break
        count += 1
    return count
