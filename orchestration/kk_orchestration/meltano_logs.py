"""What a ``meltano run`` log says: the records each plugin reported in its ``record_count`` METRIC lines.

The one reader of those lines for the code location (``shards``) and the demo (``scripts/demo.py``); plain Python,
so the demo imports it without Dagster.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable

#: A plugin's METRIC line as Meltano relays it: ``... ] tap-kahuna-logs METRIC: {"type": "counter", ...}``.
METRIC_LINE = re.compile(r"\] (?P<plugin>[\w.-]+) METRIC: (?P<metric>\{.*\})\s*$")


def record_counts(log_lines: Iterable[str], plugin: Callable[[str], bool]) -> Counter[str]:
    """Records per stream reported by the plugins whose name ``plugin`` accepts (a tap read, a target loaded)."""
    counts: Counter[str] = Counter()
    for line in log_lines:
        match = METRIC_LINE.search(line)
        if match is None or not plugin(match["plugin"]):
            continue
        metric = json.loads(match["metric"])
        stream = metric.get("tags", {}).get("stream")
        if metric.get("metric") == "record_count" and stream:
            counts[stream] += int(metric["value"])
    return counts


def records_by_stream(log_lines: Iterable[str], plugin: str) -> dict[str, int]:
    """Records per stream one plugin (by its name in the run) reported."""
    return dict(record_counts(log_lines, plugin.__eq__))
