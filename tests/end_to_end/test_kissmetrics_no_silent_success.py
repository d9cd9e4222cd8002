"""``meltano run`` of tap-kahuna-logs into target-kissmetrics never saves a state that claims more than was sent.

A mapping that names no field of the schema, one that dead-letters every row of a stream, and a dry run: each
leaves the job's Meltano state as it was (here: none), and the first two fail the run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import pytest

from emulators.testing import EmulatorProcess
from tests.end_to_end.meltano_helpers import MeltanoProject
from tests.support.datasets import FIXED_NOW

pytestmark = pytest.mark.meltano

JOB = "kahuna-to-kissmetrics"
STATE_ID = "dev:tap-kahuna-logs-to-target-kissmetrics--kahuna-events"
#: The job's loader, an inheriting plugin: Meltano reads its own settings from these variables.
LOADER = "TARGET_KISSMETRICS__KAHUNA_EVENTS_"


def kahuna_into_kissmetrics(
    project: MeltanoProject, start_emulator: Callable[..., EmulatorProcess], **loader_settings: str
) -> EmulatorProcess:
    """Point the job at a Kahuna emulator (two days of the small data) and a Kissmetrics emulator."""
    kahuna = start_emulator("kahuna")
    kissmetrics = start_emulator("kissmetrics")
    project.settings.update(
        {
            "TAP_KAHUNA_LOGS_API_URL": f"{kahuna.url}/api/kahunalogs",
            "TAP_KAHUNA_LOGS_START_DATE": (FIXED_NOW.date() - timedelta(days=1)).isoformat(),
            "TAP_KAHUNA_LOGS_END_DATE": FIXED_NOW.date().isoformat(),
            "TARGET_KISSMETRICS_TRACKING_URL": kissmetrics.url,
            **{LOADER + name.upper(): value for name, value in loader_settings.items()},
        }
    )
    return kissmetrics


def event_mapping(timestamp: str) -> dict[str, object]:
    """The project's mapping of the three log streams, with ``timestamp`` taken from another field."""
    streams: dict[str, object] = {
        name: {"kind": "event", "person": "user_id", "event": f"Kahuna {name} {{action}}", "timestamp": timestamp}
        for name in ("inapp_logs", "push_logs", "email_logs")
    }
    streams["user_merge_logs"] = {"kind": "alias", "person": "surviving_user_id", "alias": "merged_user_id"}
    return streams


def test_a_mapping_naming_an_unknown_field_fails_the_run_and_saves_no_state(
    project: MeltanoProject, start_emulator: Callable[..., EmulatorProcess]
) -> None:
    streams = event_mapping("timestamp")
    streams["inapp_logs"] = {"kind": "event", "person": "user", "event": "Kahuna inapp_logs {action}"}
    kissmetrics = kahuna_into_kissmetrics(project, start_emulator, streams=json.dumps(streams))
    result = project.run("run", JOB, check=False)
    assert result.returncode != 0
    assert "streams.inapp_logs.person names field 'user', not in the stream's schema" in result.stderr
    assert project.state(STATE_ID) == {}
    # Streams read before it were sent (a re-run re-sends them as duplicates); nothing of the broken one was.
    events = kissmetrics.control("dedup")["events"]
    assert not [event for event in events if event["event"].startswith("Kahuna inapp_logs")]


def test_a_mapping_that_dead_letters_every_row_fails_the_run_and_saves_no_state(
    project: MeltanoProject, start_emulator: Callable[..., EmulatorProcess]
) -> None:
    # `action` exists in every log stream's schema, but no action is a timestamp: every event row is dead-lettered.
    kissmetrics = kahuna_into_kissmetrics(project, start_emulator, streams=json.dumps(event_mapping("action")))
    result = project.run("run", JOB, check=False)
    assert result.returncode != 0
    assert "too many dead letters: stream 'email_logs' has" in result.stderr
    assert "timestamp field 'action' is neither ISO 8601 nor unix seconds" in result.stderr
    assert project.state(STATE_ID) == {}
    assert kissmetrics.control("stats")["raw"]["e"] == 0
    dead_letters = project.workdir / "dead-letters.jsonl"
    letters = [json.loads(line) for line in dead_letters.read_text().splitlines()]
    sendable = {
        (str(letter["record"]["user_id"]), letter["record"]["action"])
        for letter in letters
        if letter["record"].get("user_id") and letter["record"].get("action")
    }
    assert sendable

    # With the project's own mapping back, the dead letters are sent again: each row kept once, however often.
    del project.settings[LOADER + "STREAMS"]
    kept = []
    for _ in range(2):
        project.run("invoke", "target-kissmetrics--kahuna-events", "--resend-dead-letters", str(dead_letters))
        kept.append(kissmetrics.control("dedup")["events"])
    assert {(event["person"], event["event"].rsplit(" ", 1)[1]) for event in kept[0]} == sendable
    assert kept[1] == kept[0]
    assert kissmetrics.control("stats")["raw"]["e"] == 2 * len(sendable_rows(letters))
    assert project.state(STATE_ID) == {}  # a resend writes no state


def sendable_rows(letters: list[dict]) -> list[dict]:
    """The dead-lettered rows the project's mapping can send (a person and an action)."""
    return [letter for letter in letters if letter["record"].get("user_id") and letter["record"].get("action")]


def test_a_dry_run_saves_no_state(project: MeltanoProject, start_emulator: Callable[..., EmulatorProcess]) -> None:
    kissmetrics = kahuna_into_kissmetrics(project, start_emulator, dry_run="true")
    result = project.run("run", JOB)
    assert "none sent, no STATE emitted" in result.stderr
    assert project.state(STATE_ID) == {}
    assert kissmetrics.control("stats")["raw"]["total"] == 0
