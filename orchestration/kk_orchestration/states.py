"""Fold shard states back into one unsharded pipeline's state ID; show a bookmark in one line.

    python -m kk_orchestration.states merge dev:tap-kaon-insights--clicks-to-target-postgres \\
        dev:tap-kaon-insights--clicks-to-target-postgres:EXT-0000 \\
        dev:tap-kaon-insights--clicks-to-target-postgres:EXT-0001

``meltano state merge --from-state-id`` merges objects key by key but replaces lists, and singer-sdk
keeps the bookmarks of a partitioned stream (one per external ID or path) in a ``partitions`` list: merging
shard after shard that way keeps only the last shard's IDs. This merges such lists by each entry's
``context`` too, in the order given (a later shard wins), onto the unsharded state ID's current state,
then stores the result with ``meltano state set``. Run it with the same ``MELTANO_DATABASE_URI`` and
``MELTANO_STATE_BACKEND_URI`` as the shards (orchestration/README.md).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from kk_orchestration.project import PROJECT_DIR, meltano_command, meltano_error


def merge_states(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``update`` merged onto ``base``: objects key by key, SDK partition lists entry by ``context``."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_states(merged[key], value)
        elif key == "partitions" and isinstance(value, list) and isinstance(merged.get(key), list):
            merged[key] = merge_partitions(merged[key], value)
        else:
            merged[key] = value
    return merged


def merge_partitions(base: list[dict[str, Any]], update: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Partition bookmarks by context: ``update``'s replace ``base``'s of the same context, new ones follow."""
    by_context = {json.dumps(entry.get("context"), sort_keys=True): entry for entry in base}
    for entry in update:
        by_context[json.dumps(entry.get("context"), sort_keys=True)] = entry
    return list(by_context.values())


def condensed_bookmark(bookmark: Mapping[str, Any], width: int = 160) -> str:
    """A stream's bookmark in one line of at most ``width`` characters, for people (the demo, the report).

    The bookmark's value comes first (it is what a reader looks for, and long lines are cut at the end); a
    partitioned stream shows how many partitions it has and the last one.
    """
    partitions = bookmark.get("partitions") or []
    first = ("replication_key_value", "day", "replication_key")
    own = {key: bookmark[key] for key in first if key in bookmark}
    own.update({key: value for key, value in bookmark.items() if key not in own and key != "partitions"})
    text = json.dumps(own, default=str) if own else ""
    if partitions:
        text += f"{' + ' if text else ''}{len(partitions)} partitions, last {json.dumps(partitions[-1], default=str)}"
    return text if len(text) <= width else text[: width - 3] + "..."


def meltano(*arguments: str) -> str:
    """Run a meltano command through the launcher; its stdout, or exit naming the command."""
    result = subprocess.run(meltano_command(*arguments), cwd=PROJECT_DIR, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"`meltano {' '.join(arguments[:3])} ...` failed: {meltano_error(result.stderr)}")
    return result.stdout


def stored_state(state_id: str) -> dict[str, Any]:
    """A state ID's state (``{}`` when it has none)."""
    return json.loads(meltano("state", "get", state_id) or "{}")


def merge_into(target: str, sources: Sequence[str]) -> dict[str, Any]:
    """Merge the sources' states, in order, onto the target's; store and return the result."""
    merged = stored_state(target)
    for source in sources:
        state = stored_state(source)
        if not state:
            raise SystemExit(f"{source} has no state: is the state ID right, and the shard run?")
        merged = merge_states(merged, state)
    meltano("state", "set", "--force", target, json.dumps(merged))
    return merged


def main(argv: Sequence[str] | None = None) -> None:
    """Command line."""
    parser = argparse.ArgumentParser(prog="python -m kk_orchestration.states", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    merge = commands.add_parser("merge", help="merge shard states into an unsharded state ID")
    merge.add_argument("target", help="the unsharded state ID, e.g. dev:tap-kahuna-logs-to-target-postgres")
    merge.add_argument("sources", nargs="+", help="shard state IDs, oldest partition first")
    arguments = parser.parse_args(argv)
    merged = merge_into(arguments.target, arguments.sources)
    print(json.dumps(merged), file=sys.stdout)


if __name__ == "__main__":
    main()
