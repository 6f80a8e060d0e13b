#!/usr/bin/env bash
# A throwaway PostgreSQL server for the test suite (fsync off, trust auth, 127.0.0.1 only).
#
#   eval "$(bash scripts/postgres.sh)"   # install if needed, start, export SOUNDSEARCH_TEST_PG_URL
#   bash scripts/postgres.sh stop        # stop it (the data stays in $PGDATA until /tmp is cleared)
#
# Idempotent: a running server is reused and an initialised data folder is started again, so running it
# twice is safe. Only the `export ...` line goes to stdout (for `eval`); progress goes to stderr. It never
# touches the machine's default `main` cluster. Overrides: SOUNDSEARCH_PGDATA, SOUNDSEARCH_PGPORT.
set -euo pipefail

PGDATA=${SOUNDSEARCH_PGDATA:-/tmp/ss-pgdata}
PGPORT=${SOUNDSEARCH_PGPORT:-54329}
URL="postgresql+psycopg://soundsearch:soundsearch@127.0.0.1:${PGPORT}/soundsearch"

say() { echo "postgres.sh: $*" >&2; }

find_pgbin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

# initdb and the server refuse to run as root: as root, run them as the `postgres` user Debian creates.
as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

ready() { "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PGPORT"; }

# pid of the server that holds $PGDATA's lock file, if that process is alive. A server killed with -9
# leaves its lock file behind, and in a container without an init its pid can linger as a zombie.
lock_holder() {
    local pid state
    pid=$(head -n 1 "$PGDATA/postmaster.pid" 2>/dev/null) || return 0
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 0
    if [ -n "$state" ] && [ "$state" != Z ]; then echo "$pid"; fi
}

PGBIN=$(find_pgbin)
if [ "${1:-start}" = stop ]; then
    if [ -n "$PGBIN" ] && [ -n "$(lock_holder)" ]; then
        as_owner "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >&2
    fi
    exit 0
fi

if [ -z "$PGBIN" ]; then
    if [ "$(id -u)" != 0 ]; then
        say "PostgreSQL is not installed; run as root or: sudo apt-get install -y postgresql"
        exit 1
    fi
    say "installing PostgreSQL from Debian packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends postgresql </dev/null >&2
    PGBIN=$(find_pgbin)
fi

if [ ! -f "$PGDATA/PG_VERSION" ]; then
    say "initialising $PGDATA"
    rm -rf "$PGDATA"
    if [ "$(id -u)" = 0 ]; then install -d -o postgres -g postgres "$PGDATA"; else install -d "$PGDATA"; fi
    as_owner "$PGBIN/initdb" -D "$PGDATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >&2
fi

if ready; then
    say "server already running on 127.0.0.1:$PGPORT"
elif [ -n "$(lock_holder)" ]; then
    say "server $(lock_holder) is starting; waiting for it"
    for _ in $(seq 60); do ready && break; sleep 0.5; done
    ready || { say "server $(lock_holder) holds $PGDATA but does not answer on port $PGPORT"; exit 1; }
else
    rm -f "$PGDATA/postmaster.pid" "$PGDATA/.s.PGSQL.$PGPORT" "$PGDATA/.s.PGSQL.$PGPORT.lock"
    say "starting on 127.0.0.1:$PGPORT"
    if ! as_owner "$PGBIN/pg_ctl" -D "$PGDATA" -w -l "$PGDATA/server.log" \
        -o "-p $PGPORT -c listen_addresses=127.0.0.1 -k $PGDATA -c fsync=off -c full_page_writes=off" \
        start >&2; then
        tail -n 20 "$PGDATA/server.log" >&2 || true
        exit 1
    fi
fi

psql_admin() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres "$@"; }
if [ -z "$(psql_admin -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'soundsearch'")" ]; then
    psql_admin -c "CREATE ROLE soundsearch LOGIN PASSWORD 'soundsearch'"
fi
if [ -z "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = 'soundsearch'")" ]; then
    psql_admin -c "CREATE DATABASE soundsearch OWNER soundsearch"
fi

say "ready: $URL"
echo "export SOUNDSEARCH_TEST_PG_URL=$URL"
