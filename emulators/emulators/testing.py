"""Start an emulator as a real process on 127.0.0.1 and talk to its control routes.

Used by the tests (``tests/conftest.py``), the benchmarks and the demo.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from typing import Any

STARTUP_TIMEOUT_SECONDS = 30


class EmulatorProcess:
    """A running ``python -m emulators <service>`` process."""

    def __init__(self, service: str, *args: str, env: dict[str, str] | None = None) -> None:
        self.service = service
        command = [sys.executable, "-m", "emulators", service, "--host", "127.0.0.1", "--port", "0", *args]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        line = self.process.stdout.readline() if self.process.stdout else ""
        if not line:
            self.process.kill()
            stderr = self.process.stderr.read() if self.process.stderr else ""
            self.stop()
            raise RuntimeError(f"emulator {service} did not start: {stderr.strip()}")
        self.url: str = json.loads(line)["url"]

    # --- control routes -------------------------------------------------------
    def control(self, name: str, payload: Any = None, method: str | None = None) -> Any:
        """Call ``/_emulator/<name>``: GET without payload, POST with one."""
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(  # noqa: S310 (our own http URL on loopback)
            f"{self.url}/_emulator/{name}",
            data=data,
            method=method or ("GET" if data is None else "POST"),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return json.loads(response.read() or b"null")

    def set_faults(self, **knobs: Any) -> dict[str, Any]:
        """Change fault knobs, e.g. ``set_faults(error_rate=0.5)``."""
        return self.control("faults", knobs)

    def set_clock(self, now: str | None = None, advance_seconds: float | None = None) -> str:
        """Freeze the clock at ``now`` and/or move it forward; returns the new now."""
        body: dict[str, Any] = {}
        if now is not None:
            body["now"] = now
        if advance_seconds is not None:
            body["advance_seconds"] = advance_seconds
        return self.control("clock", body)["now"]

    def corrupt(self, kind: str, target: dict[str, Any] | None = None, **options: Any) -> dict[str, Any]:
        """Break the answers ``target`` picks, e.g. ``corrupt("missing_key", {"day": "2026-11-16", "page": 0})``.

        ``options`` are the rule's ``key``, ``value``, ``index`` and ``times`` (``/_emulator/corruptions``).
        """
        described: dict[str, Any] = self.control("corruptions", {"kind": kind, "target": target or {}, **options})
        return described

    def corrupted_answers(self) -> list[dict[str, Any]]:
        """Every answer broken so far: ``[{"kind", "target": {...the answer's target fields}}]``, oldest first."""
        applied: list[dict[str, Any]] = self.control("corruptions")["applied"]
        return applied

    def clear_corruptions(self) -> None:
        """Forget every corruption rule and the log of broken answers."""
        self.control("corruptions", {"clear": True})

    def requests(self) -> list[dict[str, Any]]:
        """The request log: every service request received since the last reset."""
        return self.control("requests")

    def reset(self) -> None:
        """Clear the request log and any service state (e.g. received beacons)."""
        self.control("reset", {})

    # --- lifecycle --------------------------------------------------------------
    def stop(self) -> None:
        """Stop the process."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream:
                stream.close()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
