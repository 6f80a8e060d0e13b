#!/usr/bin/env bash
# Sets up everything on a fresh machine (system packages, a virtualenv with CPU torch, the project)
# and runs the test suite. Extra arguments go to pytest. Heavy checks: `bash scripts/test.sh -m slow`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
# A real PostgreSQL server for the database tests (required in CI; elsewhere they skip if it cannot start).
if pg_env=$(bash scripts/postgres.sh); then
    eval "$pg_env"
elif [ "${CI:-}" = true ]; then
    echo "PostgreSQL could not be started; CI runs the suite against both databases" >&2
    exit 1
else
    echo "warning: PostgreSQL could not be started; its tests will be skipped" >&2
fi
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(-m "not slow")
exec .venv/bin/python -m pytest "${args[@]}"
