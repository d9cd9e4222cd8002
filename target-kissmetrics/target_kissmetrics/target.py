"""The Kissmetrics target."""

from __future__ import annotations

from singer_sdk import typing as th
from singer_sdk.target_base import Target


class TargetKissmetrics(Target):
    """Singer target for the Kissmetrics tracking API."""

    name = "target-kissmetrics"
    config_jsonschema = th.PropertiesList(
        th.Property("api_key", th.StringType, required=True, secret=True, description="Kissmetrics API key."),
    ).to_dict()


if __name__ == "__main__":
    TargetKissmetrics.cli()
