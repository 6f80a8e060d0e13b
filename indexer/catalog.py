"""The catalogue writes and reads that ingest needs, each one short transaction (see `db` for the order).

Tags: per sound and per segment, the `TAG_TOP` most probable labels scoring at least `TAG_MIN_SCORE`
are stored. The rest of the 527 scores are near zero and only bloat the table (a million segments
would otherwise be half a billion rows); text search ranks by the labels a sound really has.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from .db import (
    ID_CHUNK,
    Embedding,
    EmbeddingSpace,
    IngestFailure,
    IngestRun,
    Library,
    RunStatus,
    Segment,
    SegmentTag,
    Sound,
    SoundTag,
    bump_generations,
    pack_vector,
    utcnow,
)

TAG_TOP = 32
TAG_MIN_SCORE = 0.01


class LibraryError(ValueError):
    """A library name or root that cannot be used as asked."""


@dataclass(frozen=True)
class SoundState:
    """What the catalogue knows about one file of a library."""

    id: int
    size: int
    mtime: float
    content_hash: str
    complete: bool  # has vectors in the current space (False after a model change)


@dataclass(frozen=True)
class FailureState:
    size: int
    mtime: float
    reason: str


@dataclass
class SoundRecord:
    """Everything stored for one encoded file."""

    rel_path: str
    size: int
    mtime: float
    content_hash: str
    duration_s: float
    sample_rate: int
    channels: int
    format: str
    title: str | None
    description: str | None
    starts: np.ndarray  # (segments,) seconds
    ends: np.ndarray
    vectors: np.ndarray  # (segments, dim) in the space's terms (see `encoders.example_vector`)
    tags: np.ndarray  # (segments, classes) probabilities


def resolve_library(session: Session, root: Path, name: str | None) -> tuple[Library, str | None]:
    """The library for `root` (created on first use) and a note when an existing one moved.

    Without a name, the library whose root is `root` is used, or a new one named after the folder.
    With a name that exists under another root, the library is re-pointed at `root`: its files are
    stored relative to the root, so a moved library folder is recognised file by file.
    """
    root_text = str(root)
    if name is None:
        library = session.scalar(select(Library).where(Library.root == root_text))
        if library is not None:
            return library, None
        name = root.name or root_text
        other = session.scalar(select(Library).where(Library.name == name))
        if other is not None:
            raise LibraryError(
                f"a library named {name!r} already exists at {other.root}; give this folder its own name with "
                f"--library NAME, or pass --library {name} to move that library here"
            )
        library = Library(name=name, root=root_text)
        session.add(library)
        session.flush()
        return library, None
    library = session.scalar(select(Library).where(Library.name == name))
    if library is None:
        taken = session.scalar(select(Library).where(Library.root == root_text))
        if taken is not None:
            raise LibraryError(f"{root} is already the library {taken.name!r}; use --library {taken.name}")
        library = Library(name=name, root=root_text)
        session.add(library)
        session.flush()
        return library, None
    if library.root == root_text:
        return library, None
    note = f"library {name!r} moved from {library.root} to {root_text}"
    library.root = root_text
    return library, note


def library_state(session: Session, library_id: int, space: EmbeddingSpace) -> dict[str, SoundState]:
    """Every sound of the library by relative path."""
    complete = set(
        session.scalars(
            select(Segment.sound_id)
            .join(Embedding, Embedding.segment_id == Segment.id)
            .join(Sound, Sound.id == Segment.sound_id)
            .where(Sound.library_id == library_id, Embedding.space_id == space.id)
            .distinct()
        )
    )
    rows = session.execute(
        select(Sound.id, Sound.rel_path, Sound.size, Sound.mtime, Sound.content_hash).where(
            Sound.library_id == library_id
        )
    )
    return {r.rel_path: SoundState(r.id, r.size, r.mtime, r.content_hash, r.id in complete) for r in rows}


def library_failures(session: Session, library_id: int) -> dict[str, FailureState]:
    rows = session.execute(
        select(IngestFailure.rel_path, IngestFailure.size, IngestFailure.mtime, IngestFailure.reason).where(
            IngestFailure.library_id == library_id
        )
    )
    return {r.rel_path: FailureState(r.size, r.mtime, r.reason) for r in rows}


def top_tags(probs: np.ndarray) -> list[tuple[int, float]]:
    """(label, score) of the labels worth storing, best first."""
    order = np.argsort(-probs, kind="stable")[:TAG_TOP]
    return [(int(i), float(probs[i])) for i in order if probs[i] >= TAG_MIN_SCORE]


def write_sound(
    session: Session, library_id: int, space: EmbeddingSpace, record: SoundRecord, sound_id: int | None
) -> tuple[int, np.ndarray, np.ndarray]:
    """Insert or replace one sound with its segments, tags and vectors, in the caller's transaction.
    Returns (sound id, new segment ids, old segment ids that the index must drop)."""
    fields = {
        "rel_path": record.rel_path,
        "content_hash": record.content_hash,
        "size": record.size,
        "mtime": record.mtime,
        "duration_s": record.duration_s,
        "sample_rate": record.sample_rate,
        "channels": record.channels,
        "format": record.format,
        "title": record.title,
        "description": record.description,
        "indexed_at": utcnow(),
    }
    old_ids = np.empty(0, np.int64)
    if sound_id is None:
        sound = Sound(library_id=library_id, **fields)
        session.add(sound)
        session.flush()
        sound_id = sound.id
    else:
        old_ids = np.fromiter(session.scalars(select(Segment.id).where(Segment.sound_id == sound_id)), np.int64)
        session.execute(delete(Segment).where(Segment.sound_id == sound_id))
        session.execute(delete(SoundTag).where(SoundTag.sound_id == sound_id))
        session.execute(update(Sound).where(Sound.id == sound_id).values(**fields))
    segments = [
        Segment(sound_id=sound_id, position=i, start_s=float(s), end_s=float(e))
        for i, (s, e) in enumerate(zip(record.starts, record.ends, strict=True))
    ]
    session.add_all(segments)
    session.flush()
    new_ids = np.array([seg.id for seg in segments], dtype=np.int64)
    seg_tags = [
        {"segment_id": int(seg_id), "label": label, "score": score}
        for seg_id, probs in zip(new_ids, record.tags, strict=True)
        for label, score in top_tags(probs)
    ]
    if seg_tags:
        session.execute(insert(SegmentTag), seg_tags)
    sound_tags = [{"sound_id": sound_id, "label": lb, "score": sc} for lb, sc in top_tags(record.tags.max(axis=0))]
    if sound_tags:
        session.execute(insert(SoundTag), sound_tags)
    session.execute(
        insert(Embedding),
        [
            {"space_id": space.id, "segment_id": int(seg_id), "vector": pack_vector(vec)}
            for seg_id, vec in zip(new_ids, record.vectors, strict=True)
        ],
    )
    session.execute(
        delete(IngestFailure).where(IngestFailure.library_id == library_id, IngestFailure.rel_path == record.rel_path)
    )
    bump_generations(session)
    return sound_id, new_ids, old_ids


def restamp_sound(session: Session, sound_id: int, rel_path: str, size: int, mtime: float) -> None:
    """Same content under a new stamp or path (touched, or moved within the library): vectors are kept."""
    session.execute(update(Sound).where(Sound.id == sound_id).values(rel_path=rel_path, size=size, mtime=mtime))


def remove_sounds(session: Session, sound_ids: Iterable[int]) -> np.ndarray:
    """Delete sounds (their segments, tags and vectors go with them); returns the dropped segment ids."""
    ids = sorted(sound_ids)
    dropped: list[int] = []
    for start in range(0, len(ids), ID_CHUNK):
        chunk = ids[start : start + ID_CHUNK]
        dropped += session.scalars(select(Segment.id).where(Segment.sound_id.in_(chunk)))
        session.execute(delete(Sound).where(Sound.id.in_(chunk)))
    if ids:
        bump_generations(session)
    return np.array(dropped, dtype=np.int64)


def record_failure(session: Session, library_id: int, rel_path: str, size: int, mtime: float, reason: str) -> None:
    row = session.scalar(
        select(IngestFailure).where(IngestFailure.library_id == library_id, IngestFailure.rel_path == rel_path)
    )
    if row is None:
        session.add(IngestFailure(library_id=library_id, rel_path=rel_path, size=size, mtime=mtime, reason=reason))
    else:
        row.size, row.mtime, row.reason, row.failed_at = size, mtime, reason, utcnow()


def forget_failures(session: Session, library_id: int, rel_paths: Iterable[str]) -> None:
    """Drop failure records of files that are gone from disk."""
    paths = sorted(rel_paths)
    for start in range(0, len(paths), ID_CHUNK):
        session.execute(
            delete(IngestFailure).where(
                IngestFailure.library_id == library_id, IngestFailure.rel_path.in_(paths[start : start + ID_CHUNK])
            )
        )


def start_run(session: Session, library_id: int) -> IngestRun:
    """A new run row; runs of this host whose process is gone are marked interrupted first."""
    host = socket.gethostname()
    for run in session.scalars(select(IngestRun).where(IngestRun.status == RunStatus.running, IngestRun.host == host)):
        if not _pid_alive(run.pid):
            run.status, run.finished_at = RunStatus.interrupted, utcnow()
    run = IngestRun(library_id=library_id, host=host, pid=os.getpid())
    session.add(run)
    session.flush()
    return run


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
