"""The local services of `make test` and `make demo` belong to their checkout: a port another program holds is one
clear line naming the variable that moves it, never a silent connection to someone else's server."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_postgres_refuses_a_port_held_by_another_server(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        result = subprocess.run(
            [str(PROJECT_ROOT / "scripts" / "postgres.sh")],
            env={**os.environ, "KK_PG_PORT": str(port), "KK_PG_DATA": str(tmp_path / "pgdata")},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"postgres.sh: 127.0.0.1:{port} is in use by another server (not this checkout's cluster in "
        f"{tmp_path / 'pgdata'}): set KK_PG_PORT to a free port, e.g. KK_PG_PORT={port + 1} make test"
    )
    assert not (tmp_path / "pgdata").exists(), "nothing was initialised"
