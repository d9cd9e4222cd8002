"""The Kaon Insights tap."""

from __future__ import annotations

from singer_sdk import Stream, Tap
from singer_sdk import typing as th


class TapKaonInsights(Tap):
    """Singer tap for the Kaon Insights API."""

    name = "tap-kaon-insights"
    config_jsonschema = th.PropertiesList(
        th.Property("api_key", th.StringType, required=True, secret=True, description="Kaon Insights API key."),
        th.Property("client", th.StringType, required=True, description="Kaon client ID of the app."),
    ).to_dict()

    def discover_streams(self) -> list[Stream]:
        """Streams come in the tap-kaon-insights issue."""
        return []


if __name__ == "__main__":
    TapKaonInsights.cli()
