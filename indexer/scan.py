"""Discovery: which files under a folder are sounds worth decoding."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..audio import AUDIO_EXTENSIONS

#: Files and folders that operating systems and tools leave in sound libraries.
SYSTEM_NAMES = frozenset({"thumbs.db", "desktop.ini", "__macosx", "$recycle.bin", "system volume information"})


def is_hidden_or_system(name: str) -> bool:
    return name.startswith(".") or name.casefold() in SYSTEM_NAMES


def is_audio_name(name: str) -> bool:
    """By extension, case-insensitively (`.WAV` and `.Wav` count)."""
    return Path(name).suffix.lower() in AUDIO_EXTENSIONS


def scan_folder(root: Path, unreadable: list[Path] | None = None) -> Iterator[Path]:
    """Audio files below `root`, sorted per folder; hidden/system entries skipped, symlinked folders not
    followed (so a link loop cannot recurse forever). Folders that cannot be listed are appended to
    `unreadable` when given."""

    def on_error(exc: OSError) -> None:
        if unreadable is not None and exc.filename is not None:
            unreadable.append(Path(exc.filename))

    for folder, dirs, files in os.walk(root, followlinks=False, onerror=on_error):
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


@dataclass(frozen=True)
class ScannedFile:
    rel_path: str  # POSIX separators, relative to the library root
    size: int | None  # None when the file could not be stat'ed (broken link, link loop)
    mtime: float | None
    problem: str | None = None


@dataclass
class LibraryScan:
    """The audio files of a library folder, and the sub-folders whose content is unknown this time."""

    files: list[ScannedFile] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # relative folders that could not be listed

    def covers(self, rel_path: str) -> bool:
        """Whether this scan saw the part of the tree `rel_path` is in (files under an unreadable
        folder must not be taken for deleted)."""
        return not any(d == "" or rel_path == d or rel_path.startswith(d + "/") for d in self.unreadable)


def scan_library(root: Path) -> LibraryScan:
    """Walk a library folder and stat every audio file."""
    unreadable: list[Path] = []
    scan = LibraryScan()
    for path in scan_folder(root, unreadable):
        rel = path.relative_to(root).as_posix()
        try:
            st = path.stat()
        except OSError as exc:
            scan.files.append(ScannedFile(rel, None, None, describe_os_error(path, exc, "during the scan")))
            continue
        scan.files.append(ScannedFile(rel, st.st_size, st.st_mtime))
    scan.unreadable = [p.relative_to(root).as_posix() if p != root else "" for p in unreadable]
    return scan


def describe_os_error(path: Path, exc: OSError, when: str) -> str:
    """A short reason for a file the OS would not open: link loop, broken link, vanished (`when`), or
    the OS's own words."""
    if exc.errno == errno.ELOOP:
        return "symbolic link loop"
    if path.is_symlink():
        return "broken symbolic link"
    if isinstance(exc, FileNotFoundError):
        return f"file vanished {when}"
    return f"cannot read file ({exc.strerror or exc})"
