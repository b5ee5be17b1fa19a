#!/usr/bin/env bash
# Run a command with a throwaway PostgreSQL cluster, exporting its URL as
# LENSVAULT_TEST_PG_URL. The cluster lives in a temp dir and is removed on exit,
# however the command ends. initdb refuses to run as root, so as root the
# cluster belongs to an unprivileged user.
#
# If PostgreSQL is not installed and we are root, it is installed from Debian's
# packages; otherwise the tests that need it are skipped with a reason.
set -uo pipefail

find_pg_bin() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/initdb" ] && { echo "$d"; return 0; }
    done
    command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return 0; }
    return 1
}

PG_BIN=$(find_pg_bin)
if [ -z "$PG_BIN" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "with-postgres: installing PostgreSQL from Debian's packages" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) >&2
    PG_BIN=$(find_pg_bin)
fi
if [ -z "$PG_BIN" ]; then
    echo "with-postgres: PostgreSQL not found; PostgreSQL tests will be skipped" >&2
    exec "$@"
fi

PGDIR=$(mktemp -d /tmp/lensvault-pg.XXXXXX)
chmod 755 "$PGDIR"
RUN=()
if [ "$(id -u)" = 0 ]; then
    PGUSER_OS=postgres
    id "$PGUSER_OS" >/dev/null 2>&1 || PGUSER_OS=nobody
    chown "$PGUSER_OS" "$PGDIR"
    RUN=(runuser -u "$PGUSER_OS" --)
fi

cleanup() {
    "${RUN[@]}" "$PG_BIN/pg_ctl" -D "$PGDIR/data" -m immediate stop >/dev/null 2>&1
    rm -rf "$PGDIR"
}
trap cleanup EXIT INT TERM

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"${RUN[@]}" "$PG_BIN/initdb" -D "$PGDIR/data" -U postgres -A trust -E UTF8 --no-locale >"$PGDIR/initdb.log" 2>&1 \
    || { cat "$PGDIR/initdb.log" >&2; echo "with-postgres: initdb failed" >&2; exit 1; }
"${RUN[@]}" "$PG_BIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w -t 60 \
    -o "-p $PORT -k $PGDIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null \
    || { cat "$PGDIR/server.log" >&2; echo "with-postgres: server did not start" >&2; exit 1; }

export LENSVAULT_TEST_PG_URL="postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres"
echo "with-postgres: PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on port $PORT" >&2
"$@"
status=$?
exit $status
