"""Keep each plugin README's settings table equal to the plugin's ``--about --format=markdown`` table.

``python scripts/readme_settings.py write`` rewrites the tables; ``check`` exits 1 naming every README whose table
differs (a test runs it). The table is the plugin's own settings: the SDK's standard ones (stream maps,
flattening, batch) are described once in the README's text instead.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PLUGINS = ("tap-kaon-insights", "tap-kahuna-logs", "tap-duckdb", "target-kissmetrics")
HEADER = "| Setting | Required | Default | Description |"
SDK_STANDARD = ("stream_maps", "stream_map_config", "faker_config", "flattening_", "batch_config")


def about_table(plugin: str) -> list[str]:
    """The header, separator and the plugin's own rows of its ``--about`` markdown settings table."""
    about = subprocess.run(
        [str(BIN / plugin), "--about", "--format=markdown"], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    start = about.index(HEADER)
    table = []
    for line in about[start:]:
        if not line.startswith("|"):
            break
        table.append(line)
    own = [row for row in table[2:] if not row.split("|")[1].strip().startswith(SDK_STANDARD)]
    return [*table[:2], *own]


def readme_table(readme: list[str]) -> tuple[int, int]:
    """Where the settings table of a README starts and ends (line indexes, end exclusive)."""
    start = readme.index(HEADER)
    end = start
    while end < len(readme) and readme[end].startswith("|"):
        end += 1
    return start, end


def main(argv: list[str]) -> int:
    """``write`` or ``check``."""
    if argv not in (["write"], ["check"]):
        print("usage: readme_settings.py write | check", file=sys.stderr)
        return 2
    stale = []
    for plugin in PLUGINS:
        path = PROJECT_ROOT / plugin / "README.md"
        lines = path.read_text().splitlines()
        start, end = readme_table(lines)
        table = about_table(plugin)
        if lines[start:end] != table:
            stale.append(plugin)
            if argv == ["write"]:
                path.write_text("\n".join([*lines[:start], *table, *lines[end:]]) + "\n")
    if argv == ["check"] and stale:
        for plugin in stale:
            print(f"{plugin}/README.md: the settings table differs from --about (run scripts/readme_settings.py write)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
