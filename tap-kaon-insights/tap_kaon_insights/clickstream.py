"""External-ID clickstreams: paging by timestamp, each record emitted once.

Bookmark per external ID: ``replication_key_value`` (the last timestamp emitted) and ``records_at_bookmark`` (how
many records of that second were emitted), so a resumed run skips exactly those. ``start`` is inclusive, so every
page begins with the previous page's last second; a page that holds nothing but that second is asked again with a
larger limit (doubling up to ``external_id_max_page_size``).
"""

from __future__ import annotations

import typing as t
from collections.abc import Iterator

from typing_extensions import override

from tap_kaon_insights.client import KaonError, KaonStream
from tap_kaon_insights.payloads import PayloadChecker, checked_clicks
from tap_kaon_insights.records import Row, click_row
from tap_kaon_insights.weeks import unix_to_iso

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context


class ClickstreamStream(KaonStream):
    """One partition per configured external ID, read from its bookmark on."""

    endpoint = "extid"
    replication_key = "timestamp_unix"
    is_sorted = True

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
            records = self.fetch_page(external_id, last_second, limit)
            if last_second is not None and len(records) >= limit and records[-1]["timestamp"] == last_second:
                limit = self._larger_limit(external_id, last_second, limit)
                continue
            already = min(emitted_in_second, leading_run(records, last_second))
            for record in records[already:]:
                if record["timestamp"] == last_second:
                    emitted_in_second += 1
                else:
                    last_second, emitted_in_second = record["timestamp"], 1
                state["records_at_bookmark"] = emitted_in_second
                yield click_row(self.settings.client, external_id, record, emitted_in_second - 1)
            if len(records) < limit:
                return
            limit = page_size

    def _larger_limit(self, external_id: str, second: int, limit: int) -> int:
        ceiling = max(self.settings.external_id_max_page_size, self.settings.external_id_page_size)
        if limit >= ceiling:
            raise KaonError(
                f"Kaon Insights holds more than {limit} records of external id {external_id!r} in the one second "
                f"{unix_to_iso(second)}, so paging cannot advance: raise external_id_max_page_size"
            )
        self.logger.info("External id %r: one second fills a page of %d; asking for %d", external_id, limit, limit * 2)
        return min(limit * 2, ceiling)

    def fetch_page(self, external_id: str, start: int | None, limit: int) -> list[dict[str, t.Any]]:
        """One page of records from ``start`` (inclusive), checked."""
        params: dict[str, t.Any] = {"id": external_id, "limit": limit}
        if start is not None:
            params["start"] = start
        payload = self.fetch(self.endpoint, **params)
        return checked_clicks(PayloadChecker(self.endpoint_name(), **params), payload)


def leading_run(records: list[dict[str, t.Any]], second: int | None) -> int:
    """How many records at the start of a page belong to ``second``."""
    count = 0
    for record in records:
        if record["timestamp"] != second:
            break
        count += 1
    return count
