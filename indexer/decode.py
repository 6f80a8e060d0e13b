"""The ingest stage that runs in worker processes: stat, hash, read metadata and decode one file.

It imports no torch, so worker processes start fast and stay small; the model runs once, in the main
process, on batches of what the workers return. A job never raises: every problem with the file comes
back as a `DecodeFailed` naming the reason, so one bad file cannot stop a batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio import AudioDecodeError, load_audio
from ..encoders.store import file_digest
from .metadata import read_metadata
from .scan import describe_os_error


@dataclass(frozen=True)
class DecodeJob:
    """One file to look at. `known_hashes` are contents already indexed (this path's previous version,
    files that disappeared from elsewhere in the library): a file with one of them is not decoded."""

    path: str
    rel_path: str
    target_rate: int
    max_seconds: float
    known_hashes: tuple[str, ...] = ()


@dataclass(frozen=True)
class FileStamp:
    """What decides whether a file changed since it was indexed."""

    size: int
    mtime: float
    content_hash: str


@dataclass
class Decoded:
    """A file to encode: its audio at the encoder's rate plus what the catalogue stores about it."""

    job: DecodeJob
    stamp: FileStamp
    samples: np.ndarray  # (n,) float32 mono at `sample_rate`
    sample_rate: int
    source_rate: int
    channels: int
    format: str
    truncated: bool  # longer than `max_seconds`: only the beginning was kept
    title: str | None
    description: str | None

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


@dataclass
class KnownContent:
    """The file holds content that is already indexed: no decoding, no model work."""

    job: DecodeJob
    stamp: FileStamp


@dataclass
class DecodeFailed:
    """Why the file could not be indexed; `size`/`mtime` are None when it could not even be stat'ed."""

    job: DecodeJob
    reason: str
    size: int | None = None
    mtime: float | None = None


DecodeResult = Decoded | KnownContent | DecodeFailed


def run_job(job: DecodeJob) -> DecodeResult:
    """Stat, hash, and (unless the content is known) decode one file. Never raises for the file's sake."""
    try:
        before = os.stat(job.path)
    except OSError as exc:
        return DecodeFailed(job, describe_os_error(Path(job.path), exc, "before it could be read"))
    size, mtime = before.st_size, before.st_mtime
    try:
        digest = file_digest(Path(job.path), "sha256")  # finds touched-but-unchanged and moved files
    except OSError as exc:
        return DecodeFailed(job, describe_os_error(Path(job.path), exc, "before it could be read"), size, mtime)
    stamp = FileStamp(size, mtime, digest)
    if digest in job.known_hashes:
        return KnownContent(job, stamp)
    try:
        audio = load_audio(job.path, target_rate=job.target_rate, max_seconds=job.max_seconds)
    except AudioDecodeError as exc:
        return DecodeFailed(job, exc.reason, size, mtime)
    if _changed_since(job.path, before):
        return DecodeFailed(job, "file changed while it was being read (it will be retried next run)", size, mtime)
    meta = read_metadata(Path(job.path))
    return Decoded(
        job=job,
        stamp=stamp,
        samples=audio.samples,
        sample_rate=audio.sample_rate,
        source_rate=audio.source_rate,
        channels=audio.channels,
        format=audio.format,
        truncated=audio.duration >= job.max_seconds - 1.0 / audio.sample_rate,
        title=meta.title,
        description=meta.description,
    )


def _changed_since(path: str, before: os.stat_result) -> bool:
    try:
        after = os.stat(path)
    except OSError:
        return True
    return (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns)
