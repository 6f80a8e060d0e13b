#!/usr/bin/env bash
# Idempotent set-up, sourced by the other scripts: system packages, .venv with CPU torch, the project.
set -euo pipefail
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
# torch first and pinned: an unpinned torch pulls gigabytes of CUDA packages (see README, GPU install).
.venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
