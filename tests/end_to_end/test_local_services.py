"""The local services of `make test` and `make demo` belong to their checkout: a port another program holds is one
clear line naming the variable that moves it, never a silent connection to someone else's server."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
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


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def answers(port: int) -> bool:
    """Whether a server accepts connections on 127.0.0.1:port."""
    with socket.socket() as client:
        client.settimeout(2)
        return client.connect_ex(("127.0.0.1", port)) == 0


def test_make_postgres_stop_stops_this_checkouts_server_and_keeps_its_data() -> None:
    port = free_port()
    # Under /tmp itself: the server runs as the postgres user, who cannot enter pytest's private tmp_path.
    data_dir = Path(tempfile.mkdtemp(prefix=f"kk-pgdata-stop-test-{port}-", dir=tempfile.gettempdir()))
    env = {**os.environ, "KK_PG_PORT": str(port), "KK_PG_DATA": str(data_dir)}

    def make(target: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["make", "--no-print-directory", "-C", str(PROJECT_ROOT), target],
            env=env, capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip

    try:
        started = subprocess.run(
            [str(PROJECT_ROOT / "scripts" / "postgres.sh")], env=env, capture_output=True, text=True, timeout=180
        )
        assert started.returncode == 0, started.stderr
        assert answers(port)
        stopped = make("postgres-stop")
        assert stopped.returncode == 0, stopped.stderr
        assert f"postgres.sh: stopped PostgreSQL on 127.0.0.1:{port}" in stopped.stderr
        assert not answers(port), "the server is down"
        assert (data_dir / "PG_VERSION").exists(), "its data is kept"
        again = make("postgres-stop")
        assert again.returncode == 0
        assert f"no server of this checkout runs on 127.0.0.1:{port}" in again.stderr
        restarted = subprocess.run(
            [str(PROJECT_ROOT / "scripts" / "postgres.sh")], env=env, capture_output=True, text=True, timeout=180
        )
        assert restarted.returncode == 0, restarted.stderr
        assert answers(port), "make postgres starts it again on the kept data"
    finally:
        subprocess.run(
            [str(PROJECT_ROOT / "scripts" / "postgres.sh"), "stop"], env=env, capture_output=True, timeout=180
        )
        subprocess.run(["rm", "-rf", str(data_dir), f"{data_dir}.initdb.log"], check=False)


def test_postgres_stop_leaves_another_server_on_the_port_alone(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        result = subprocess.run(
            [str(PROJECT_ROOT / "scripts" / "postgres.sh"), "stop"],
            env={**os.environ, "KK_PG_PORT": str(port), "KK_PG_DATA": str(tmp_path / "pgdata")},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert answers(port), "the other program's server still listens"
    assert result.returncode == 0
    assert "nothing to stop" in result.stderr
