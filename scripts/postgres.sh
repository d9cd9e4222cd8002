#!/usr/bin/env bash
# A PostgreSQL server for the warehouse on 127.0.0.1:$KK_PG_PORT, with its user and two databases:
# the warehouse and Meltano's shared system database (runs and state of sharded runs, orchestration/).
# Idempotent: when this checkout's server already answers there it only makes sure the user and databases
# exist; a port held by anything else (another checkout's cluster, another program) stops it with one line
# naming KK_PG_PORT. Installs PostgreSQL with apt-get when no initdb is found (needs root, as `make test` on a
# fresh CI machine has). `postgres.sh stop` (make postgres-stop) stops this checkout's server on that port and
# keeps its data; it never stops another server.
set -euo pipefail

PORT="${KK_PG_PORT:-55432}"
# One data directory per checkout and port, so two checkouts on one machine never share a cluster.
CHECKOUT="$(cd "$(dirname "$0")/.." && pwd)"
DATA_DIR="${KK_PG_DATA:-/tmp/kk-pgdata-$PORT-$(printf %s "$CHECKOUT" | cksum | cut -d' ' -f1)}"
DB_USER="${KK_PG_USER:-kk}"
DB_PASSWORD="${KK_PG_PASSWORD:-kk-dev-password}"
DB_NAME="${KK_PG_DATABASE:-kk_warehouse}"
SYSTEM_DB_NAME="${KK_PG_SYSTEM_DATABASE:-kk_meltano}"

fail() { echo "postgres.sh: $*" >&2; exit 1; }

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

pg_bin_dir() {
    local initdb_path
    if initdb_path="$(command -v initdb 2>/dev/null)"; then
        dirname "$(readlink -f "$initdb_path")"
        return
    fi
    # Debian keeps the server binaries off PATH, one directory per major version: take the newest.
    local newest
    newest="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    [[ -n "$newest" && -x "$newest/initdb" ]] && echo "$newest"
}

install_postgres() {
    [[ "$(id -u)" == 0 ]] || fail "PostgreSQL is not installed: run 'apt-get install -y postgresql' as root (or start a server on 127.0.0.1:$PORT)"
    echo "postgres.sh: installing PostgreSQL with apt-get" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
}

# initdb and the server refuse to run as root: run them as the `postgres` system user then.
as_server_user() {
    if [[ "$(id -u)" == 0 ]]; then
        id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

sql() { as_server_user "$BIN/psql" -X -q -h "$DATA_DIR" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"; }

ensure_user_and_databases() {
    sql <<SQL
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', '$DB_USER', '$DB_PASSWORD')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_USER') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', '$DB_NAME', '$DB_USER')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DB_NAME') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', '$SYSTEM_DB_NAME', '$DB_USER')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$SYSTEM_DB_NAME') \gexec
SQL
}

ours_is_running() {  # postmaster.pid: line 1 the server's pid, line 4 its port
    [[ -f "$DATA_DIR/postmaster.pid" ]] && [[ "$(sed -n 4p "$DATA_DIR/postmaster.pid")" == "$PORT" ]] &&
        kill -0 "$(head -n 1 "$DATA_DIR/postmaster.pid")" 2>/dev/null
}

stop_ours() {
    if ! ours_is_running; then
        echo "postgres.sh: no server of this checkout runs on 127.0.0.1:$PORT (data in $DATA_DIR): nothing to stop" >&2
        return 0
    fi
    BIN="$(pg_bin_dir)" || fail "this checkout's server runs on 127.0.0.1:$PORT but no pg_ctl was found to stop it"
    as_server_user "$BIN/pg_ctl" -D "$DATA_DIR" -w -t 60 -m fast stop >/dev/null ||
        fail "the server on 127.0.0.1:$PORT did not stop: see $DATA_DIR/server.log"
    echo "postgres.sh: stopped PostgreSQL on 127.0.0.1:$PORT (data kept in $DATA_DIR; make postgres starts it again)" >&2
}

case "${1:-start}" in
    start) ;;
    stop) stop_ours; exit 0 ;;
    *) fail "unknown command '$1': use 'start' (the default) or 'stop'" ;;
esac

if answers; then
    if ours_is_running; then
        # A database added since the cluster was created (kk_meltano) is made now.
        BIN="$(pg_bin_dir)" && ensure_user_and_databases
        exit 0
    fi
    fail "127.0.0.1:$PORT is in use by another server (not this checkout's cluster in $DATA_DIR): set KK_PG_PORT to a free port, e.g. KK_PG_PORT=$((PORT + 1)) make test"
fi

BIN="$(pg_bin_dir || true)"
if [[ -z "$BIN" ]]; then
    install_postgres
    BIN="$(pg_bin_dir || true)"
    [[ -n "$BIN" ]] || fail "apt-get installed postgresql but no initdb was found under /usr/lib/postgresql"
fi

if [[ ! -f "$DATA_DIR/PG_VERSION" ]]; then
    mkdir -p "$DATA_DIR"
    [[ "$(id -u)" == 0 ]] && chown postgres: "$DATA_DIR"
    chmod 700 "$DATA_DIR"
    as_server_user "$BIN/initdb" -D "$DATA_DIR" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 --no-locale >"$DATA_DIR.initdb.log" 2>&1 ||
        fail "initdb failed: see $DATA_DIR.initdb.log"
fi

as_server_user "$BIN/pg_ctl" -D "$DATA_DIR" -l "$DATA_DIR/server.log" -w -t 60 \
    -o "-p $PORT -k $DATA_DIR -c listen_addresses=127.0.0.1" start >/dev/null ||
    fail "the server did not start on 127.0.0.1:$PORT: see $DATA_DIR/server.log"

ensure_user_and_databases
echo "postgres.sh: PostgreSQL on 127.0.0.1:$PORT, databases $DB_NAME and $SYSTEM_DB_NAME, user $DB_USER (data in $DATA_DIR)" >&2
