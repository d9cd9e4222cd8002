"""Placeholder demo until the Meltano pipeline lands: starts the emulators and shows each plugin's --about."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from emulators.testing import EmulatorProcess

BIN = Path(sys.executable).parent


def main() -> None:
    """Start each emulator, print its URL, run each plugin's --about, stop the emulators."""
    print("The Meltano pipeline is not built yet: this demo starts the emulators and runs each plugin's --about.")
    emulators = [EmulatorProcess(name) for name in ("kaon", "kahuna", "kissmetrics")]
    try:
        for emulator in emulators:
            print(f"{emulator.service} emulator listening on {emulator.url}")
        for plugin in ("tap-kaon-insights", "tap-kahuna-logs", "target-kissmetrics"):
            subprocess.run([str(BIN / plugin), "--about"], check=True)
    finally:
        for emulator in emulators:
            emulator.stop()


if __name__ == "__main__":
    main()
