"""Headless Chromium (Debian's package, ``make chromium``) for the tests that render pages: the demo's report
and Dagster's UI."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",  # root in CI
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-extensions",
]


def chromium(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium with a profile of its own in ``cwd``."""
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("chromium is not installed: run `make chromium` (make test does it)")
    command = [executable, *CHROMIUM_FLAGS, f"--user-data-dir={cwd / 'chromium-profile'}", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=180, check=True)


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) of a PNG file's bytes; fails on anything that is not a PNG."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", png[16:24])
    return width, height
