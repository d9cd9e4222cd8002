"""Secret canaries, the one home for all three plugins: no form of a secret in any output, in any situation.

Each case runs one plugin's real CLI with canary secrets at DEBUG (``LOGLEVEL`` and ``<PLUGIN>_LOGLEVEL``:
urllib3's DEBUG lines carry every request URL with its query string) in one situation, checks that the
situation really happened (the error it must cause, the canary really sent, the DEBUG lines really showing
where the key would be), then searches everything the run left for every form of every canary (raw,
URL-encoded both ways, base64 alone and as the Basic pair, and the canary's distinctive stem): stdout (records
and STATE), stderr, the dead letters, the state file the test keeps, and every other file written in the run's
directory. The config files are the one exception (they hold the canaries on purpose) and each is checked to
really hold them.

The Meltano-level canary run is ``test_reliability_meltano.py`` (the only one through Meltano).
"""

from __future__ import annotations

import base64
import json
import re
import selectors
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote, quote_plus, urlsplit

import pytest

from emulators.testing import EmulatorProcess
from tests.reliability.reliability_helpers import (
    CANARY_API_KEY,
    CANARY_KM_KEY,
    CANARY_SECRET_KEY,
    assert_no_secret,
    closed_port,
    dedup_events,
    event_messages,
    expected_events,
    expected_kahuna_keys,
    files_text,
    kahuna_config,
    kahuna_keys_by_stream,
    km_config,
    singer_text,
)
from tests.support.cli import TAP_KAHUNA, TAP_KAON, TARGET_KM, PluginRun, json_lines, run_plugin, write_json
from tests.support.datasets import FIXED_NOW_TEXT, KAON_CLIENT, SMALL_DATA, kaon_dataset
from tests.support.emulators import start_kahuna

#: A wrong credential, and the API key the Kahuna emulator knows but has not enabled for the Logs API (409):
#: both hold the canary, so a leak of either shows as the canary.
WRONG = "-wrong"
NOT_ENABLED = "-not-enabled"
CANARIES = [CANARY_API_KEY, CANARY_SECRET_KEY, CANARY_KM_KEY]
#: Every secret value any case configures: the canaries and the wrong and not-enabled keys built from them.
SECRETS = [*CANARIES, *(canary + WRONG for canary in CANARIES), CANARY_API_KEY + NOT_ENABLED]
#: A loopback address plain http is not allowed for (only 127.0.0.1, localhost and ::1 are): a listener there
#: stands in for a real host and would see any connection a plugin opened despite the rule.
NOT_ALLOWED_HOST = "127.0.0.2"
FAST_RETRIES = {"max_retries": 1, "backoff_base_seconds": 0.05, "request_timeout": 0.5}


@dataclass(frozen=True)
class Plugin:
    """One plugin as these tests drive it."""

    executable: str
    env_prefix: str
    #: secret setting -> its canary
    secrets: dict[str, str]
    url_setting: str
    https_default: str
    #: the request path every request of the plugin's DEBUG lines shows
    request_path: str
    #: the logger of those DEBUG lines, and the line each new connection logs (urllib3's in the taps; the target
    #: sends with aiohttp, which logs no requests, and logs its own)
    http_logger: str = "urllib3.connectionpool"
    connection_line: str = "Starting new HTTP connection"


PLUGINS = {
    "kahuna": Plugin(
        TAP_KAHUNA,
        "TAP_KAHUNA_LOGS",
        {"secret_key": CANARY_SECRET_KEY, "api_key": CANARY_API_KEY},
        "api_url",
        "https://tap-nexus.appspot.com/api/kahunalogs",
        '"POST /api/kahunalogs?env=p HTTP/1.1"',
    ),
    "kaon": Plugin(
        TAP_KAON,
        "TAP_KAON_INSIGHTS",
        {"api_key": CANARY_API_KEY},
        "api_url",
        "https://insights.v-central.com/api",
        '"GET /api/weeks?apikey=***REDACTED***&client=demo-client HTTP/1.1"',
    ),
    "kissmetrics": Plugin(
        TARGET_KM,
        "TARGET_KISSMETRICS",
        {"api_key": CANARY_KM_KEY},
        "tracking_url",
        "https://trk.kissmetrics.io",
        "/e?_k=***REDACTED***&_p=",
        http_logger="target-kissmetrics.delivery",
        connection_line="Opening a new connection to the tracking host",
    ),
}


def basic_token(username: str, password: str) -> str:
    """The token an HTTP Basic ``Authorization`` header carries."""
    return base64.b64encode(f"{username}:{password}".encode()).decode()


# --- what every case leaves behind -----------------------------------------------------------------------------


def assert_no_canary_in_run(run: PluginRun, where: str) -> None:
    """No form of any secret in the run's stdout and stderr, nor in its records and STATE values once parsed (a
    JSON writer may escape characters, e.g. ``&`` as ``\\u0026``, that the raw text would hide)."""
    assert_no_secret(run.stdout, SECRETS, f"{where} stdout")
    assert_no_secret(run.stderr, SECRETS, f"{where} stderr")
    assert_no_secret(json.dumps(run.states + run.target_states), SECRETS, f"{where} STATE")
    assert_no_secret(json.dumps(run.record_messages), SECRETS, f"{where} records")


def assert_no_canary_in_files(workdir: Path, plugin: Plugin) -> None:
    """No form of any secret in any file the runs wrote (dead letters, state, catalogs, ...); the configs hold them."""
    written = files_text(workdir)
    assert written, "the runs wrote no file"
    for path, text in written.items():
        assert_no_secret(text, SECRETS, path)
    configs = sorted(workdir.rglob("config-*.json"))
    assert configs, "no config file: the runs did not go through run_plugin"
    for path in configs:
        config = json.loads(path.read_text())
        for setting, canary in plugin.secrets.items():
            assert config[setting].startswith(canary), f"{path}: {setting} is not the canary"


def assert_debug_was_on(run: PluginRun) -> None:
    """The run really logged at DEBUG (a leak in a DEBUG line would be in what is searched)."""
    assert "| DEBUG    |" in run.stderr, run.stderr[-2000:]


def assert_requests_were_logged(run: PluginRun, plugin: Plugin) -> None:
    """The HTTP client's DEBUG lines are there, showing each request line (for Kaon and Kissmetrics, the key
    redacted)."""
    assert_debug_was_on(run)
    assert plugin.http_logger in run.stderr, run.stderr[-2000:]
    assert plugin.request_path in run.stderr, f"no DEBUG line shows {plugin.request_path}: {run.stderr[-2000:]}"


def assert_connections_were_logged(run: PluginRun, plugin: Plugin) -> None:
    """The HTTP client's DEBUG lines are there: the run was at DEBUG when it tried to connect."""
    assert_debug_was_on(run)
    assert plugin.connection_line in run.stderr, run.stderr[-2000:]


def assert_no_request_attempted(run: PluginRun, plugin: Plugin) -> None:
    """The run stopped before opening any connection (the caller checks the server saw nothing, too)."""
    assert plugin.connection_line not in run.stderr, run.stderr[-2000:]
    assert plugin.http_logger not in run.stderr, run.stderr[-2000:]


def assert_failed_with(run: PluginRun, *phrases: str) -> None:
    """Exit code 1, no traceback, an ERROR line holding every phrase."""
    assert run.returncode == 1, run.stderr[-3000:]
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    assert any(all(phrase in line for phrase in phrases) for line in run.error_lines), (phrases, run.error_lines)


# --- the services ------------------------------------------------------------------------------------------------


class SilentListener:
    """A loopback server that reads every request and never answers (every read times out); it keeps the bytes.

    What it received shows the canary really went out on the wire, so the timeout path was a path with a secret;
    that it received nothing shows a run refused to connect.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._socket = socket.socket()
        self._socket.bind((host, 0))
        self._socket.listen(64)
        self._socket.setblocking(False)
        self.url = f"http://{host}:{self._socket.getsockname()[1]}"
        self.connections = 0
        self._received = bytearray()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        connections: list[socket.socket] = []
        with selectors.DefaultSelector() as selector:
            selector.register(self._socket, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in selector.select(timeout=0.05):
                    if key.fileobj is self._socket:
                        connection, _ = self._socket.accept()
                        connection.setblocking(False)
                        connections.append(connection)
                        self.connections += 1
                        selector.register(connection, selectors.EVENT_READ)
                        continue
                    connection = cast(socket.socket, key.fileobj)
                    try:
                        data = connection.recv(65536)
                    except OSError:
                        data = b""
                    if data:
                        with self._lock:
                            self._received += data
                    else:
                        selector.unregister(connection)
        for connection in connections:
            connection.close()

    @property
    def received(self) -> str:
        """Every byte received so far, as text."""
        with self._lock:
            return self._received.decode("latin-1")

    def close(self) -> None:
        """Stop the server and close every connection."""
        self._stop.set()
        self._thread.join()
        self._socket.close()


@dataclass
class Bench:
    """What a case works with: the canary emulators, a silent listener on demand, the case's directory."""

    emulators: dict[str, EmulatorProcess]
    workdir: Path
    listener: Callable[..., SilentListener]

    def emulator(self, name: str) -> EmulatorProcess:
        """The module's canary emulator of ``name``, with no faults, no cursor expiry and an empty log."""
        emulator = self.emulators[name]
        emulator.set_faults(error_rate=0.0, drop_rate=0.0, rate_limit_rate=0.0, slow_body_ms=0.0, latency_ms=0.0)
        if name == "kahuna":
            off = {"expire_after_uses": None, "ttl_seconds": None, "expire_rate": 0.0, "expire_at_uses": None}
            emulator.control("kahuna/cursors", off)
        emulator.reset()
        return emulator

    def run(self, plugin: str, config: dict[str, Any], **options: Any) -> PluginRun:
        """Run ``plugin`` at DEBUG in the case's directory."""
        prefix = PLUGINS[plugin].env_prefix
        env = {"LOGLEVEL": "DEBUG", f"{prefix}_LOGLEVEL": "DEBUG"}
        if plugin == "kissmetrics":
            env["PYTHONASYNCIODEBUG"] = "1"  # asyncio's own debug lines too (the target sends on an event loop)
            options.setdefault("stdin", singer_text(event_messages(5)))
        return run_plugin(PLUGINS[plugin].executable, config, self.workdir, env=env, **options)


@pytest.fixture(scope="module")
def canary_emulators() -> Iterator[dict[str, EmulatorProcess]]:
    """One emulator per service that accepts only the canary credentials."""
    emulators = {
        "kahuna": start_kahuna(
            "--secret-key",
            CANARY_SECRET_KEY,
            "--api-key",
            CANARY_API_KEY,
            "--not-enabled-api-key",
            CANARY_API_KEY + NOT_ENABLED,
        ),
        "kaon": EmulatorProcess("kaon", "--now", FIXED_NOW_TEXT, *SMALL_DATA["kaon"], "--api-key", CANARY_API_KEY),
        "kissmetrics": EmulatorProcess("kissmetrics", "--now", FIXED_NOW_TEXT, "--api-key", CANARY_KM_KEY),
    }
    yield emulators
    for emulator in emulators.values():
        emulator.stop()


@pytest.fixture
def bench(canary_emulators: dict[str, EmulatorProcess], tmp_path: Path) -> Iterator[Bench]:
    """The case's bench; its silent listeners are closed after the case."""
    listeners: list[SilentListener] = []

    def listener(host: str = "127.0.0.1") -> SilentListener:
        listeners.append(SilentListener(host))
        return listeners[-1]

    yield Bench(canary_emulators, tmp_path, listener)
    for started in listeners:
        started.close()


# --- the situations ------------------------------------------------------------------------------------------------

Situation = Callable[[Bench], list[PluginRun]]
#: (plugin, situation) -> the function that runs it and checks it really happened
SITUATIONS: dict[tuple[str, str], Situation] = {}


def situation(plugin: str, name: str) -> Callable[[Situation], Situation]:
    """Register a situation of ``plugin``."""

    def register(function: Situation) -> Situation:
        SITUATIONS[(plugin, name)] = function
        return function

    return register


def canary_kahuna_config(url: str, **overrides: Any) -> dict[str, Any]:
    """A tap-kahuna-logs config with the canary credentials, fast retries."""
    canaries = {"secret_key": CANARY_SECRET_KEY, "api_key": CANARY_API_KEY, "backoff_base_seconds": 0.05}
    return kahuna_config(url, **{**canaries, **overrides})


def canary_kaon_config(url: str, **overrides: Any) -> dict[str, Any]:
    """A tap-kaon-insights config with the canary key: the last three weeks, fast retries."""
    return {
        "api_key": CANARY_API_KEY,
        "client": KAON_CLIENT,
        "api_url": f"{url}/api",
        "start_week": kaon_dataset().current_week - 2,
        "max_retries": 1,
        "backoff_base_seconds": 0.05,
        **overrides,
    }


def canary_km_config(url: str, workdir: Path, **overrides: Any) -> dict[str, Any]:
    """A target-kissmetrics config with the canary key and a dead-letter file."""
    return km_config(url, workdir, **{"api_key": CANARY_KM_KEY, "backoff_max_seconds": 0.5, **overrides})


def keep_state(workdir: Path, states: list[dict[str, Any]]) -> None:
    """Write the last STATE to ``state.json``, as an orchestrator's state backend would keep it."""
    assert states, "the run emitted no STATE"
    write_json(workdir / "state.json", states[-1])


@situation("kahuna", "success_with_retries")
def kahuna_success(bench: Bench) -> list[PluginRun]:
    emulator = bench.emulator("kahuna")
    emulator.set_faults(error_rate=0.1, drop_rate=0.05, seed=9)
    # Random expiry, and one certain (the third cursor use), so the expired-cursor path always runs.
    emulator.control("kahuna/cursors", {"expire_rate": 0.1, "seed": 3, "expire_at_uses": [3]})
    categories = ("inapp", "user_merge")
    config = canary_kahuna_config(emulator.url, page_size=40, categories=list(categories))

    run = bench.run("kahuna", config)

    assert run.returncode == 0, run.stderr[-3000:]
    emitted = kahuna_keys_by_stream(run.record_messages)
    for stream, rows in expected_kahuna_keys(categories=categories).items():
        assert sorted(emitted[stream]) == sorted(rows), f"{stream}: not the dataset's records"
    assert "Retrying" in run.stderr
    assert "Cursor expired while reading" in run.stderr
    assert emulator.control("kahuna/cursors")["expired_answers"] > 0
    assert_requests_were_logged(run, PLUGINS["kahuna"])
    sent = {entry["headers"].get("Authorization") for entry in emulator.requests()}
    assert sent == {f"Basic {basic_token(CANARY_SECRET_KEY, CANARY_API_KEY)}"}, "the canaries were not what was sent"
    keep_state(bench.workdir, run.states)
    return [run]


@situation("kahuna", "wrong_credentials")
def kahuna_wrong_credentials(bench: Bench) -> list[PluginRun]:
    emulator = bench.emulator("kahuna")
    run = bench.run("kahuna", canary_kahuna_config(emulator.url, api_key=CANARY_API_KEY + WRONG, max_concurrency=1))

    assert_failed_with(run, "401", "check secret_key/api_key")
    assert [entry["status"] for entry in emulator.requests()] == [401], "the emulator did not refuse the wrong key"
    assert_requests_were_logged(run, PLUGINS["kahuna"])
    return [run]


@situation("kahuna", "not_enabled")
def kahuna_not_enabled(bench: Bench) -> list[PluginRun]:
    emulator = bench.emulator("kahuna")
    config = canary_kahuna_config(emulator.url, api_key=CANARY_API_KEY + NOT_ENABLED, max_concurrency=1)

    run = bench.run("kahuna", config)

    assert_failed_with(run, "409", "not enabled for the Logs API")
    assert [entry["status"] for entry in emulator.requests()] == [409]
    assert_requests_were_logged(run, PLUGINS["kahuna"])
    return [run]


@situation("kahuna", "bad_config")
def kahuna_bad_config(bench: Bench) -> list[PluginRun]:
    # A secret pasted into a setting whose bad value the error line repeats.
    emulator = bench.emulator("kahuna")
    run = bench.run("kahuna", canary_kahuna_config(emulator.url, page_size=5000, environment=CANARY_API_KEY))

    assert_failed_with(run, "page_size must be 1000 or less (got 5000)")
    assert_failed_with(run, "environment must be one of p, s (got '***REDACTED***')")
    assert emulator.requests() == []
    assert_no_request_attempted(run, PLUGINS["kahuna"])
    return [run]


@situation("kaon", "success_with_retries")
def kaon_success(bench: Bench) -> list[PluginRun]:
    emulator = bench.emulator("kaon")
    emulator.set_faults(error_rate=0.2, drop_rate=0.05, seed=2)
    data = kaon_dataset()
    config = canary_kaon_config(
        emulator.url,
        paths=data.path_names[:2],
        external_ids=data.external_id_names[:2],
        external_id_page_size=40,
        max_retries=10,
        backoff_max_seconds=0.5,
    )

    run = bench.run("kaon", config)

    assert run.returncode == 0, run.stderr[-3000:]
    streams = {"weeks", "engagement", "devices", "countries", "languages", "hits", "path_hits", "external_id_hits"}
    assert set(run.records) == streams, "every stream emitted records"
    assert "Retrying" in run.stderr
    log = emulator.requests()
    assert {str(entry["status"]) for entry in log} - {"200"}, "the emulator injected no fault"
    assert {entry["query"]["apikey"] for entry in log} == {CANARY_API_KEY}, "the canary was not what was sent"
    assert_requests_were_logged(run, PLUGINS["kaon"])
    keep_state(bench.workdir, run.states)
    return [run]


@situation("kaon", "wrong_credentials")
def kaon_wrong_credentials(bench: Bench) -> list[PluginRun]:
    emulator = bench.emulator("kaon")
    run = bench.run("kaon", canary_kaon_config(emulator.url, api_key=CANARY_API_KEY + WRONG))

    assert_failed_with(run, "403", "check api_key")
    assert run.records == {}
    assert {entry["status"] for entry in emulator.requests()} == {403}, "the emulator did not refuse the wrong key"
    assert_requests_were_logged(run, PLUGINS["kaon"])
    return [run]


@situation("kaon", "bad_config")
def kaon_bad_config(bench: Bench) -> list[PluginRun]:
    # A secret pasted where a name belongs: the error line lists the unknown names.
    emulator = bench.emulator("kaon")
    run = bench.run("kaon", canary_kaon_config(emulator.url, endpoints={CANARY_API_KEY: "weeks"}))

    assert_failed_with(run, "endpoints has unknown names ['***REDACTED***']")
    assert emulator.requests() == []
    assert_no_request_attempted(run, PLUGINS["kaon"])
    return [run]


def km_messages_with_invalid_records() -> list[dict[str, Any]]:
    """20 good events (STATE every 10) and four invalid ones, two of them holding the canary in their data."""
    messages = event_messages(20, state_every=10)
    schema, template = messages[0], messages[1]["record"]
    for name in ("bad,name", "note", "_note"):
        schema["schema"]["properties"][name] = {"type": ["string", "null"]}
    invalid = [
        {**template, "id": 1000, "bad,name": "x"},
        {**template, "id": 1001, "note": f"pasted {CANARY_KM_KEY} " + "y" * 600},
        {**template, "id": 1002, "person": ""},
        {**template, "id": 1003, "_note": CANARY_KM_KEY},
    ]
    return [*messages[:-1], *({"type": "RECORD", "stream": "events", "record": r} for r in invalid), messages[-1]]


@situation("kissmetrics", "success_with_retries_dead_letters_and_state")
def km_success(bench: Bench) -> list[PluginRun]:
    emulator = bench.emulator("kissmetrics")
    emulator.set_faults(error_rate=0.2, drop_rate=0.05, seed=4)
    messages = km_messages_with_invalid_records()

    # 4 of 24 records are invalid: within a dead-letter ratio of 0.2 (the default 0.1 would fail the run).
    config = canary_km_config(emulator.url, bench.workdir, max_dead_letter_ratio=0.2)
    run = bench.run("kissmetrics", config, stdin=singer_text(messages))

    assert run.returncode == 0, run.stderr[-3000:]
    good = [m for m in messages if m["type"] != "RECORD" or m["record"]["id"] < 1000]
    assert dedup_events(emulator) == expected_events(good)
    beacons = emulator.control("beacons?offset=0&limit=1000")["beacons"]
    assert {beacon["params"]["_k"] for beacon in beacons} == {CANARY_KM_KEY}, "the canary was not what was sent"
    (retries,) = re.findall(r"beacons sent .*?, (\d+) retries", run.stderr)
    assert int(retries) > 0, "the emulator injected no fault"
    dead_text = (bench.workdir / "dead-letters.jsonl").read_text()
    assert sorted(json.loads(line)["key"]["id"] for line in json_lines(dead_text)) == [1000, 1001, 1002, 1003]
    assert dead_text.count("***REDACTED***") == 2, "the canary in the records' data was not what was redacted"
    assert run.target_states[-1] == {"bookmarks": {"events": {"sent_up_to": 20}}}
    assert_requests_were_logged(run, PLUGINS["kissmetrics"])
    keep_state(bench.workdir, run.target_states)
    return [run]


@situation("kissmetrics", "dry_run")
def km_dry_run(bench: Bench) -> list[PluginRun]:
    emulator = bench.emulator("kissmetrics")
    run = bench.run("kissmetrics", canary_km_config(emulator.url, bench.workdir, dry_run=True))

    assert run.returncode == 0, run.stderr[-3000:]
    printed = [line for line in run.stderr.splitlines() if line.startswith("DRY RUN ")]
    assert len(printed) == 5
    assert all(f"DRY RUN {emulator.url}/e?_k=***REDACTED***&_p=" in line for line in printed), printed
    assert emulator.control("stats")["raw"]["total"] == 0
    assert_no_request_attempted(run, PLUGINS["kissmetrics"])
    return [run]


@situation("kissmetrics", "invalid_record_error")
def km_invalid_record_error(bench: Bench) -> list[PluginRun]:
    # The invalid record's event name holds the canary; the error line names the record by its key, not its values.
    emulator = bench.emulator("kissmetrics")
    messages = event_messages(5)
    leaky = {**messages[1]["record"], "id": 1000, "event": f"Seen:{CANARY_KM_KEY}"}
    messages.insert(-1, {"type": "RECORD", "stream": "events", "record": leaky})
    config = canary_km_config(emulator.url, bench.workdir, fail_on_invalid=True)

    run = bench.run("kissmetrics", config, stdin=singer_text(messages))

    assert_failed_with(run, "invalid record: stream 'events' record {\"id\": 1000}: event name contains ',' or ':'")
    assert not (bench.workdir / "dead-letters.jsonl").exists()
    return [run]


@situation("kissmetrics", "bad_config")
def km_bad_config(bench: Bench) -> list[PluginRun]:
    # A secret pasted where a beacon kind belongs: the error line repeats the unknown kind.
    emulator = bench.emulator("kissmetrics")
    run = bench.run(
        "kissmetrics", canary_km_config(emulator.url, bench.workdir, streams={"events": {"kind": CANARY_KM_KEY}})
    )

    assert_failed_with(run, "streams.events: unknown kind '***REDACTED***'")
    assert emulator.control("stats")["raw"]["total"] == 0
    assert_no_request_attempted(run, PLUGINS["kissmetrics"])
    return [run]


@dataclass(frozen=True)
class DeadService:
    """How one plugin meets a service that is not there: its config for a URL, the lines it must end with."""

    #: (url, the case's directory) -> a config with the canaries, one fast retry and a 0.5 s read timeout
    config: Callable[[str, Path], dict[str, Any]]
    refused: tuple[str, ...]
    timed_out: tuple[str, ...]
    #: the canary as the plugin sends it, as the listener must have received it
    on_the_wire: str
    #: a line the plugin logs when it retries (None: the error line counts the attempts)
    retry_line: str | None = "Retrying"


DEAD_SERVICES = {
    "kahuna": DeadService(
        lambda url, _: canary_kahuna_config(url, max_concurrency=1, **FAST_RETRIES),
        ("cannot connect", "Connection refused", "api_url"),
        ("did not answer within request_timeout",),
        f"Authorization: Basic {basic_token(CANARY_SECRET_KEY, CANARY_API_KEY)}",
    ),
    "kaon": DeadService(
        lambda url, _: canary_kaon_config(url, **FAST_RETRIES),
        ("endpoint 'weeks'", "ConnectionError", "check api_url"),
        ("endpoint 'weeks'", "Timeout"),
        f"apikey={quote_plus(CANARY_API_KEY)}&",
    ),
    "kissmetrics": DeadService(
        lambda url, workdir: canary_km_config(url, workdir, **FAST_RETRIES),
        (
            "was not delivered after 2 attempts (last: ClientConnectorError: [Errno 111] Connection refused",
            "tracking_url",
        ),
        ("was not delivered after 2 attempts (last: SocketTimeoutError: timed out",),
        f"_k={quote(CANARY_KM_KEY, safe='')}&",
        retry_line=None,
    ),
}


def connection_refused(plugin: str) -> Situation:
    """A closed port: the plugin's connection error line, urllib3's connection lines at DEBUG."""

    def refused(bench: Bench) -> list[PluginRun]:
        dead = DEAD_SERVICES[plugin]
        run = bench.run(plugin, dead.config(f"http://127.0.0.1:{closed_port()}", bench.workdir))

        assert_failed_with(run, *dead.refused)
        assert_connections_were_logged(run, PLUGINS[plugin])
        return [run]

    return refused


def timeout(plugin: str) -> Situation:
    """A listener that reads every request and never answers: the timeout line after one retry, and the listener
    received the canary (so the timed-out requests carried it).
    """

    def timed_out(bench: Bench) -> list[PluginRun]:
        dead, listener = DEAD_SERVICES[plugin], bench.listener()
        run = bench.run(plugin, dead.config(listener.url, bench.workdir))

        assert_failed_with(run, *dead.timed_out)
        assert dead.retry_line is None or dead.retry_line in run.stderr
        assert_connections_were_logged(run, PLUGINS[plugin])
        assert dead.on_the_wire in listener.received, "the canary was not what was sent"
        return [run]

    return timed_out


#: The smallest valid config of each plugin but its URL, with the canary secrets.
MINIMAL_CONFIGS = {
    "kahuna": {"secret_key": CANARY_SECRET_KEY, "api_key": CANARY_API_KEY, "start_date": "2026-11-17"},
    "kaon": {"api_key": CANARY_API_KEY, "client": KAON_CLIENT},
    "kissmetrics": {"api_key": CANARY_KM_KEY},
}


def plain_http_refused(plugin: str) -> Situation:
    """Plain http to the vendor's own host, then to a listener on a loopback address plain http is not allowed
    for: both refused with the https rule's line, before any connection (the listener sees none).
    """

    def refused(bench: Bench) -> list[PluginRun]:
        listener = bench.listener(NOT_ALLOWED_HOST)
        setting, vendor = PLUGINS[plugin].url_setting, PLUGINS[plugin].https_default.replace("https:", "http:", 1)
        runs = []
        for url in (vendor, listener.url + urlsplit(vendor).path):
            run = bench.run(plugin, {**MINIMAL_CONFIGS[plugin], setting: url})
            assert_failed_with(run, f"{setting} '{url}' must use https for {urlsplit(url).hostname}")
            assert_no_request_attempted(run, PLUGINS[plugin])
            runs.append(run)
        assert listener.connections == 0
        return runs

    return refused


for _plugin in PLUGINS:
    situation(_plugin, "connection_refused")(connection_refused(_plugin))
    situation(_plugin, "timeout")(timeout(_plugin))
    situation(_plugin, "plain_http_refused")(plain_http_refused(_plugin))


@pytest.mark.parametrize(("plugin", "name"), list(SITUATIONS), ids=[f"{p}-{n}" for p, n in SITUATIONS])
def test_no_form_of_a_secret_in_any_output(plugin: str, name: str, bench: Bench) -> None:
    runs = SITUATIONS[(plugin, name)](bench)

    assert runs
    for number, run in enumerate(runs):
        assert_no_canary_in_run(run, f"{plugin} {name} run {number}")
    assert_no_canary_in_files(bench.workdir, PLUGINS[plugin])


# --- what makes the cases mean something ------------------------------------------------------------------------


def http_status(url: str, headers: dict[str, str] | None = None, data: bytes | None = None) -> int:
    """The status of one request to an emulator."""
    request = urllib.request.Request(url, data=data, headers=headers or {})  # noqa: S310 (loopback)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as refused:
        refused.close()
        return refused.code


def test_the_canary_emulators_accept_only_the_canaries(canary_emulators: dict[str, EmulatorProcess]) -> None:
    """A wrong key is refused (Kahuna 401, Kaon 403) or not counted (Kissmetrics answers every beacon 200)."""
    kahuna, kaon, kissmetrics = (canary_emulators[name] for name in ("kahuna", "kaon", "kissmetrics"))
    body = json.dumps({"timestamp": "11/18/2026 00:00", "number_of_records": 1, "categories_to_return": ["inapp"]})

    def kahuna_status(secret: str, key: str) -> int:
        headers = {"Authorization": f"Basic {basic_token(secret, key)}", "Content-Type": "application/json"}
        return http_status(f"{kahuna.url}/api/kahunalogs?env=p", headers, body.encode())

    assert kahuna_status(CANARY_SECRET_KEY, CANARY_API_KEY) == 200
    assert kahuna_status(CANARY_SECRET_KEY, "other") == 401
    assert kahuna_status("other", CANARY_API_KEY) == 401
    assert kahuna_status(CANARY_SECRET_KEY, CANARY_API_KEY + NOT_ENABLED) == 409
    kaon_weeks = f"{kaon.url}/api/weeks?client={KAON_CLIENT}&apikey="
    assert http_status(kaon_weeks + quote_plus(CANARY_API_KEY)) == 200
    assert http_status(kaon_weeks + "other") == 403
    kissmetrics.reset()
    assert http_status(f"{kissmetrics.url}/e?_k=other&_p=p&_n=Seen&_t=1&_d=1") == 200
    assert http_status(f"{kissmetrics.url}/e?_k={quote(CANARY_KM_KEY, safe='')}&_p=p&_n=Seen&_t=1&_d=1") == 200
    stats = kissmetrics.control("stats")
    assert stats["dedup"]["events"] == 1, "only the beacon with the canary key counts"
    assert stats["ignored"] == {"wrong_key": 1}
    kissmetrics.reset()


@cache
def about(executable: str) -> dict[str, Any]:
    """The plugin's ``--about --format=json``."""
    result = subprocess.run([executable, "--about", "--format=json"], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


@pytest.mark.parametrize("plugin", list(PLUGINS))
def test_every_real_endpoint_defaults_to_https_and_every_secret_is_write_only(plugin: str) -> None:
    settings = about(PLUGINS[plugin].executable)["settings"]["properties"]

    assert settings[PLUGINS[plugin].url_setting]["default"] == PLUGINS[plugin].https_default
    secret = {name for name, schema in settings.items() if schema.get("secret") or schema.get("writeOnly")}
    assert secret == set(PLUGINS[plugin].secrets), "the canaries cover exactly the secret settings"
    assert all(settings[name].get("secret") is True and settings[name].get("writeOnly") is True for name in secret)
