#!/usr/bin/env bash
# The main job on a fresh machine: set up, get the default model, and run soundsearch on a folder of
# sounds. Usage: bash scripts/quickstart.sh FOLDER
# Offline machines: SOUNDSEARCH_IMPORT_FROM=DIR imports official model files from DIR instead of
# downloading them (e.g. a copy of a model folder made on a machine with internet).
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: bash scripts/quickstart.sh FOLDER" >&2; exit 2; }
folder=$(realpath "$1")
import_from=${SOUNDSEARCH_IMPORT_FROM:+$(realpath "$SOUNDSEARCH_IMPORT_FROM")}
cd "$(dirname "$0")/.."
source scripts/setup.sh
ss=.venv/bin/soundsearch
if [ -n "$import_from" ]; then
    "$ss" models import "$import_from"
else
    "$ss" models pull mn04
fi
# Until ingest and the web UI land: tag every sound in the folder.
"$ss" tag "$folder" --top-k 3
