"""Discovery: which files under a folder are sounds worth decoding."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..audio import AUDIO_EXTENSIONS

#: Files and folders that operating systems and tools leave in sound libraries.
SYSTEM_NAMES = frozenset({"thumbs.db", "desktop.ini", "__macosx", "$recycle.bin", "system volume information"})


def is_hidden_or_system(name: str) -> bool:
    return name.startswith(".") or name.casefold() in SYSTEM_NAMES


def is_audio_name(name: str) -> bool:
    """By extension, case-insensitively (`.WAV` and `.Wav` count)."""
    return Path(name).suffix.lower() in AUDIO_EXTENSIONS


def scan_folder(root: Path) -> Iterator[Path]:
    """Audio files below `root`, sorted per folder; hidden/system entries skipped, symlinked folders not
    followed (so a link loop cannot recurse forever)."""
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not is_hidden_or_system(d))
        for name in sorted(files):
            if not is_hidden_or_system(name) and is_audio_name(name):
                yield Path(folder) / name


def expand_paths(paths: Iterable[Path]) -> Iterator[Path]:
    """Files as given (whatever their extension, so the user hears why one fails) and folders scanned."""
    for path in paths:
        if path.is_dir():
            yield from scan_folder(path)
        else:
            yield path
