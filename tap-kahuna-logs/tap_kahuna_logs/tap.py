"""The Kahuna Logs tap."""

from __future__ import annotations

from singer_sdk import Stream, Tap
from singer_sdk import typing as th


class TapKahunaLogs(Tap):
    """Singer tap for the Kahuna Logs API."""

    name = "tap-kahuna-logs"
    config_jsonschema = th.PropertiesList(
        th.Property("secret_key", th.StringType, required=True, secret=True, description="Kahuna Secret Key."),
        th.Property("api_key", th.StringType, required=True, secret=True, description="Kahuna API Key."),
    ).to_dict()

    def discover_streams(self) -> list[Stream]:
        """Streams come in the tap-kahuna-logs issue."""
        return []


if __name__ == "__main__":
    TapKahunaLogs.cli()
