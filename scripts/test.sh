#!/usr/bin/env bash
# Sets up everything on a fresh machine (system packages, a virtualenv with CPU torch, the project)
# and runs the test suite. Extra arguments go to pytest. Heavy checks: `bash scripts/test.sh -m slow`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(-m "not slow")
exec .venv/bin/python -m pytest "${args[@]}"
