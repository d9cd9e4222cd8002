"""Run the dbt project (transform/) on a DuckDB file, and what its models must hold for the emulators' data.

dbt runs from the dbt-duckdb utility that ``make meltano-install`` installs (the same install Meltano
runs); the expected rows are computed here from the emulators' datasets, independently of the SQL.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from emulators.kahuna_data import KahunaDataset
from emulators.kaon_data import KaonDataset

# The clickstream rows the Kaon tap emits: its own tests' expectation.
from tests.tap_kaon_insights.kaon_tap_helpers import expected_clicks

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TRANSFORM = PROJECT_ROOT / "transform"
DBT = PROJECT_ROOT / ".meltano" / "utilities" / "dbt-duckdb" / "venv" / "bin" / "dbt"
LOG_CATEGORIES = {"inapp": "inapp_logs", "push": "push_logs", "email": "email_logs", "user_merge": "user_merge_logs"}
EVENT_LABELS = {"inapp": "in-app", "push": "push", "email": "email"}
# Each credential list and whose it is.
CREDENTIAL_LISTS = {
    "inapp": (("credentials", "user_id"),),
    "push": (("credentials", "user_id"),),
    "email": (("credentials", "user_id"),),
    "user_merge": (
        ("surviving_credentials", "surviving_user_id"),
        ("merged_credentials", "merged_user_id"),
        ("common_credentials", "surviving_user_id"),
    ),
}
CATEGORY_ORDER = {"inapp": 1, "push": 2, "email": 3}


@dataclass
class RawWarehouse:
    """A DuckDB file the taps loaded, and the data they loaded."""

    path: Path
    kahuna: KahunaDataset
    kaon: KaonDataset


@dataclass
class DbtRun:
    """One dbt invocation: exit code, output and the status of every node it ran."""

    returncode: int
    output: str
    statuses: dict[str, str]

    def failed(self) -> set[str]:
        """Names of the nodes that failed or errored."""
        return {name for name, status in self.statuses.items() if status in ("fail", "error")}


def run_dbt(duckdb_path: Path, workdir: Path, *args: str) -> DbtRun:
    """``dbt <args>`` on this DuckDB file, with artifacts under ``workdir``."""
    if not DBT.exists():
        raise AssertionError("dbt-duckdb is not installed: run `make meltano-install` (make test does it)")
    target = workdir / "dbt-target"
    env = {**os.environ, "DBT_DUCKDB_PATH": str(duckdb_path), "DO_NOT_TRACK": "1", "DBT_USE_COLORS": "false"}
    completed = subprocess.run(
        [str(DBT), *args, *project_arguments("duckdb", workdir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    results_path = target / "run_results.json"
    results = json.loads(results_path.read_text())["results"] if results_path.exists() else []
    results_path.unlink(missing_ok=True)  # the next run's results, not these, must be read next
    statuses = {
        result["unique_id"].split(".")[-1 if result["unique_id"].startswith("model") else 2]: result["status"]
        for result in results
    }
    return DbtRun(completed.returncode, completed.stdout + completed.stderr, statuses)


def project_arguments(warehouse: str, workdir: Path) -> list[str]:
    """dbt's arguments for this project with a warehouse's profile, artifacts under ``workdir``."""
    return [
        *("--project-dir", str(TRANSFORM), "--profiles-dir", str(TRANSFORM / "profiles" / warehouse)),
        *("--target-path", str(workdir / "dbt-target"), "--log-path", str(workdir / "dbt-logs")),
    ]


# --- what the models must hold --------------------------------------------------------


def utc(timestamp: str) -> datetime:
    """A Kahuna ``YYYY-MM-DD HH:MM:SS.ffffff`` UTC timestamp as an aware datetime."""
    return datetime.fromisoformat(timestamp).replace(tzinfo=timezone.utc)


def kahuna_logs(dataset: KahunaDataset, category: str) -> list[tuple[str, int, dict[str, Any]]]:
    """(log_date, log_position, record) of every log of a category."""
    return [
        (day.isoformat(), position, record)
        for day in dataset.days
        for position, record in enumerate(dataset.records(category, day))
    ]


def split_credential(credential: str) -> tuple[str | None, str]:
    """(type, value) of a ``type:value`` credential; an untyped one has no type."""
    kind, separator, value = credential.partition(":")
    return (kind, value) if separator and kind else (None, credential)


def expected_credentials(dataset: KahunaDataset) -> set[tuple[Any, ...]]:
    """(log_id, list, position, owner, type, value) of every credential of every log."""
    rows = set()
    for category, lists in CREDENTIAL_LISTS.items():
        for log_date, position, record in kahuna_logs(dataset, category):
            for list_name, owner in lists:
                for index, credential in enumerate(record.get(list_name) or [], start=1):
                    owner_id = str(record[owner]) if record.get(owner) is not None else None
                    log_id = f"{category}:{log_date}:{position}"
                    rows.add((log_id, list_name, index, owner_id, *split_credential(credential)))
    return rows


def expected_events(kahuna: KahunaDataset, kaon: KaonDataset) -> set[tuple[Any, ...]]:
    """(event_id, person, event, time, properties) of every event the events mart must hold."""
    properties = {"inapp": ("campaign", "campaign_id", "action_detail"), "push": ("campaign", "campaign_id", "os")}
    rows = set()
    for category, label in EVENT_LABELS.items():
        for log_date, position, record in kahuna_logs(kahuna, category):
            if not record.get("user_id") or not record.get("action"):
                continue
            props = {
                name: str(record[name])
                for name in properties.get(category, ("campaign", "campaign_id"))
                if record.get(name) not in (None, "")
            }
            rows.add(
                (
                    f"{category}:{log_date}:{position}",
                    str(record["user_id"]),
                    f"Kahuna {label} {record['action']}",
                    utc(record["timestamp"]),
                    frozenset(props.items()),
                )
            )
    for external_id in kaon.external_id_names:
        for click in expected_clicks(kaon, external_id):
            unix, sequence = click["timestamp_unix"], click["sequence_in_second"]
            rows.add(
                (
                    f"click:{click['client']}:{external_id}:{unix}:{sequence}",
                    external_id,
                    f"Viewed {click['path']}",
                    datetime.fromtimestamp(unix, timezone.utc),
                    frozenset({"sequence_in_second": str(sequence)}.items()),
                )
            )
    return rows


def expected_people(dataset: KahunaDataset) -> set[tuple[Any, ...]]:
    """(person, timestamp, platform, email): where a user's platform or e-mail changes, at the time seen."""
    seen: dict[str, dict[tuple[str, datetime], tuple[tuple[Any, ...], str]]] = {"platform": {}, "email": {}}
    for category in CATEGORY_ORDER:
        for log_date, position, record in kahuna_logs(dataset, category):
            if not record.get("user_id"):
                continue
            key = (str(record["user_id"]), utc(record["timestamp"]))
            order = (CATEGORY_ORDER[category], log_date, position)
            if category != "email" and record.get("os"):
                _keep_last(seen["platform"], key, order, record["os"])
            emails = [
                value for kind, value in map(split_credential, record.get("credentials") or []) if kind == "email"
            ]
            if emails:
                _keep_last(seen["email"], key, order, emails[0])
    changes: dict[tuple[str, datetime], dict[str, str]] = defaultdict(dict)
    for name, values in seen.items():
        previous: dict[str, str] = {}
        for (person, moment), (_, value) in sorted(values.items()):
            if previous.get(person) != value:
                changes[person, moment][name] = value
            previous[person] = value
    return {(person, moment, props.get("platform"), props.get("email")) for (person, moment), props in changes.items()}


def _keep_last(values: dict, key: tuple[str, datetime], order: tuple[Any, ...], value: str) -> None:
    if key not in values or order > values[key][0]:
        values[key] = (order, value)


def expected_aliases(
    dataset: KahunaDataset, credential_types: tuple[str, ...] = ("email",)
) -> set[tuple[str, str, str]]:
    """(person, alias, source): user merges, and users with their credentials of these types."""
    pairs: dict[tuple[str, str], str] = {}
    for category, lists in CREDENTIAL_LISTS.items():
        for _, _, record in kahuna_logs(dataset, category):
            for list_name, owner in lists:
                if not record.get(owner):
                    continue
                for kind, value in map(split_credential, record.get(list_name) or []):
                    if kind in credential_types and value != str(record[owner]):
                        pairs.setdefault((str(record[owner]), value), "kahuna_credential")
    for _, _, record in kahuna_logs(dataset, "user_merge"):
        surviving, merged = str(record.get("surviving_user_id") or ""), str(record.get("merged_user_id") or "")
        if surviving and merged and surviving != merged:
            pairs[surviving, merged] = "kahuna_merge"  # a user ID is never a credential value here
    return {(person, alias, source) for (person, alias), source in pairs.items()}
