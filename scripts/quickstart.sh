#!/usr/bin/env bash
# The main job on a fresh machine: set up, get the default model, index a folder of sounds and search
# it. Usage: bash scripts/quickstart.sh FOLDER
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
# Index the folder (re-running later only looks at what changed), then show a first search.
"$ss" index "$folder" || echo "some files could not be indexed (listed above); the others are searchable" >&2
"$ss" search --text "dog barking" -k 5
echo "search by example with: $ss search --audio SOME_SOUND.wav   (see README.md, Searching)"
