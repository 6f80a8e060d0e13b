"""Indexing a library folder: scan → plan → decode (worker processes) → encode (batched) → write → index.

`plan_library` compares the scan with the catalogue: files whose size and mtime are unchanged need no
work at all; the others are hashed first (in the workers), and a file whose content is already indexed
(touched, or moved within the library) is re-stamped without decoding. Everything else is decoded,
encoded in batches and written one sound per transaction, then added to the FAISS index (the write
order in `db` makes `kill -9` at any point safe). Files gone from disk are removed at the end, except
under folders that could not be listed this time.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sqlalchemy.orm import Session

from ..config import Settings
from ..encoders.encoder import EncodedAudio, Encoder, segment_bounds
from ..encoders.example_vector import ExampleVectors
from .catalog import (
    FailureState,
    LibraryError,
    SoundRecord,
    SoundState,
    forget_failures,
    library_failures,
    library_state,
    record_failure,
    remove_sounds,
    resolve_library,
    restamp_sound,
    start_run,
    write_sound,
)
from .db import EmbeddingSpace, IngestRun, RunStatus, space_generation, utcnow
from .decode import Decoded, DecodeFailed, DecodeJob, DecodeResult
from .decode_pool import DecodePool
from .scan import scan_library
from .spaces import SpaceIndex

#: Seconds between saves of the FAISS index during a run (it is also saved at the end).
SAVE_EVERY_S = 30.0
#: How long a part-filled batch waits for more decoded files: small batches cost the model per call.
BATCH_WAIT_S = 0.05


class IngestProgress(Protocol):
    """What a front-end (the CLI's rich progress bar) is told while a library is indexed."""

    def start(self, library: str, files: int) -> None: ...
    def advance(self, files: int, audio_s: float) -> None: ...
    def note(self, message: str) -> None: ...


@dataclass
class IngestReport:
    """What one pass over a library did."""

    library: str
    root: str
    indexed: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    moved: list[tuple[str, str]] = field(default_factory=list)  # (from, to)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (relative path, reason)
    notes: list[str] = field(default_factory=list)
    audio_s: float = 0.0  # decoded and encoded this run
    wall_s: float = 0.0
    dry_run: bool = False
    error: str | None = None  # the folder could not be indexed at all (missing, not a folder, name clash)

    def counts(self) -> dict[str, int]:
        return {
            "indexed": len(self.indexed),
            "updated": len(self.updated),
            "moved": len(self.moved),
            "unchanged": self.unchanged,
            "removed": len(self.removed),
            "failed": len(self.failed),
        }


@dataclass
class LibraryPlan:
    """What a pass must do, decided from the scan and the catalogue alone (no file is opened)."""

    jobs: list[DecodeJob]
    unchanged: int
    known_failures: list[tuple[str, str]]  # unchanged since they last failed: reported, not retried
    scan_problems: list[tuple[str, str]]
    gone: dict[str, SoundState]  # in the catalogue, not on disk
    present: set[str]


def plan_library(
    root: Path,
    state: dict[str, SoundState],
    failures: dict[str, FailureState],
    target_rate: int,
    max_seconds: float,
    retry_failed: bool = False,
) -> LibraryPlan:
    scan = scan_library(root)
    if "" in scan.unreadable:
        raise LibraryError(f"{root}: cannot list the folder")
    jobs: list[DecodeJob] = []
    unchanged = 0
    known_failures: list[tuple[str, str]] = []
    problems: list[tuple[str, str]] = []
    present: set[str] = set()
    new_sizes: dict[str, int] = {}
    for f in scan.files:
        present.add(f.rel_path)
        if f.problem is not None:
            problems.append((f.rel_path, f.problem))
            continue
        old = state.get(f.rel_path)
        if old is not None and old.complete and (old.size, old.mtime) == (f.size, f.mtime):
            unchanged += 1
            continue
        failure = failures.get(f.rel_path)
        if not retry_failed and failure is not None and (failure.size, failure.mtime) == (f.size, f.mtime):
            known_failures.append((f.rel_path, f"{failure.reason} (unchanged since the last attempt)"))
            continue
        known = (old.content_hash,) if old is not None and old.complete else ()
        if old is None and f.size is not None:
            new_sizes[f.rel_path] = f.size
        jobs.append(DecodeJob(str(root / f.rel_path), f.rel_path, target_rate, max_seconds, known))
    gone = {rel: st for rel, st in state.items() if rel not in present and scan.covers(rel)}
    # A new file the size of a vanished one may be that file, moved: let its hash decide.
    gone_hashes: dict[int, list[str]] = defaultdict(list)
    for st in gone.values():
        if st.complete:
            gone_hashes[st.size].append(st.content_hash)
    jobs = [
        DecodeJob(
            j.path, j.rel_path, j.target_rate, j.max_seconds, (*j.known_hashes, *gone_hashes[new_sizes[j.rel_path]])
        )
        if j.rel_path in new_sizes and gone_hashes.get(new_sizes[j.rel_path])
        else j
        for j in jobs
    ]
    return LibraryPlan(jobs, unchanged, known_failures, problems, gone, present)


class LibraryIngest:
    """One pass over one library: owns the plan's bookkeeping while results come back."""

    def __init__(
        self,
        sessions: Callable[[], Session],
        library_id: int,
        space: EmbeddingSpace,
        space_index: SpaceIndex,
        vectors: ExampleVectors,
        plan: LibraryPlan,
        state: dict[str, SoundState],
        report: IngestReport,
        progress: IngestProgress | None,
    ) -> None:
        self.sessions, self.library_id, self.space, self.space_index = sessions, library_id, space, space_index
        self.vectors = vectors
        self.plan, self.state, self.report, self.progress = plan, state, report, progress
        self.gone_by_hash: dict[str, list[str]] = defaultdict(list)
        for rel, st in plan.gone.items():
            self.gone_by_hash[st.content_hash].append(rel)
        self.last_save = time.monotonic()

    def run(self, pool: DecodePool, encoder: Callable[[], Encoder], batch_segments: int) -> None:
        pool.submit(self.plan.jobs)
        buffer: list[Decoded] = []
        pending_segments = 0
        while not pool.done or buffer:
            # With a part-filled batch, wait a moment for more files rather than run the model on one.
            results = pool.poll(block=True, timeout=BATCH_WAIT_S if buffer else None)
            for result in results:
                decoded = self._handle(result, pool)
                if decoded is not None:
                    buffer.append(decoded)
                    pending_segments += _segment_count(decoded, encoder())
            if buffer and (not results or pending_segments >= batch_segments or pool.done):
                self._encode_and_write(buffer, encoder())
                buffer, pending_segments = [], 0
            if time.monotonic() - self.last_save > SAVE_EVERY_S:
                self.space_index.save()
                self.last_save = time.monotonic()
        self._remove_gone()

    def _handle(self, result: DecodeResult, pool: DecodePool) -> Decoded | None:
        job = result.job
        if isinstance(result, Decoded):
            return result
        if isinstance(result, DecodeFailed):
            with self.sessions() as session, session.begin():
                if result.size is not None and result.mtime is not None:
                    record_failure(session, self.library_id, job.rel_path, result.size, result.mtime, result.reason)
            self.report.failed.append((job.rel_path, result.reason))
            self._advance(0.0)
            return None
        stamp = result.stamp
        old = self.state.get(job.rel_path)
        if old is not None and old.content_hash == stamp.content_hash:
            with self.sessions() as session, session.begin():
                restamp_sound(session, old.id, job.rel_path, stamp.size, stamp.mtime)
            self.report.unchanged += 1
            self._advance(0.0)
            return None
        source = self.gone_by_hash.get(stamp.content_hash)
        if old is None and source:
            moved_from = source.pop()
            st = self.plan.gone.pop(moved_from)
            with self.sessions() as session, session.begin():
                restamp_sound(session, st.id, job.rel_path, stamp.size, stamp.mtime)
            self.report.moved.append((moved_from, job.rel_path))
            self._advance(0.0)
            return None
        # The content it matched was claimed by another file meanwhile: decode it after all.
        pool.submit([DecodeJob(job.path, job.rel_path, job.target_rate, job.max_seconds)])
        return None

    def _encode_and_write(self, batch: list[Decoded], encoder: Encoder) -> None:
        try:
            encoded = encoder.encode_many([(d.samples, d.sample_rate) for d in batch])
        except (ValueError, RuntimeError):
            if len(batch) == 1:
                raise
            for d in batch:  # find the one the model refuses; the others still go in
                self._encode_and_write([d], encoder)
            return
        for d, enc in zip(batch, encoded, strict=True):
            self._write(d, enc)

    def _write(self, d: Decoded, enc: EncodedAudio) -> None:
        rel = d.job.rel_path
        old = self.state.get(rel)
        vectors = self.vectors(enc.embeddings, enc.tags)
        record = SoundRecord(
            rel_path=rel,
            size=d.stamp.size,
            mtime=d.stamp.mtime,
            content_hash=d.stamp.content_hash,
            duration_s=d.duration_s,
            sample_rate=d.source_rate,
            channels=d.channels,
            format=d.format,
            title=d.title,
            description=d.description,
            starts=enc.starts,
            ends=enc.ends,
            vectors=vectors,
            tags=enc.tags,
        )
        with self.sessions() as session, session.begin():
            _, new_ids, old_ids = write_sound(session, self.library_id, self.space, record, old.id if old else None)
            generation = space_generation(session, self.space.id)
        # After the commit (see `db`): the index follows the DB, never the other way round.
        index = self.space_index.index
        if len(old_ids):
            index.remove(old_ids)
        index.add(new_ids, vectors)
        index.generation = generation
        (self.report.updated if old is not None else self.report.indexed).append(rel)
        if d.truncated:
            self.report.notes.append(f"{rel}: longer than the {d.job.max_seconds:.0f} s limit; indexed its beginning")
        self.report.audio_s += d.duration_s
        self._advance(d.duration_s)

    def _remove_gone(self) -> None:
        with self.sessions() as session, session.begin():
            dropped = remove_sounds(session, [st.id for st in self.plan.gone.values()])
            forget_failures(session, self.library_id, self._failure_paths_gone(session))
            generation = space_generation(session, self.space.id)
        if len(dropped):
            self.space_index.index.remove(dropped)
            self.space_index.index.generation = generation
        self.report.removed = sorted(self.plan.gone)

    def _failure_paths_gone(self, session: Session) -> list[str]:
        return [rel for rel in library_failures(session, self.library_id) if rel not in self.plan.present]

    def _advance(self, audio_s: float) -> None:
        if self.progress is not None:
            self.progress.advance(1, audio_s)


def _segment_count(d: Decoded, encoder: Encoder) -> int:
    return len(segment_bounds(len(d.samples), d.sample_rate, encoder.window_s, encoder.hop_s))


@dataclass
class IngestOptions:
    workers: int = 1
    retry_failed: bool = False
    dry_run: bool = False


def index_library(
    settings: Settings,
    sessions: Callable[[], Session],
    space: EmbeddingSpace,
    space_index: SpaceIndex,
    encoder: Callable[[], Encoder],
    vectors: ExampleVectors,
    target_rate: int,
    root: Path,
    name: str | None,
    options: IngestOptions,
    progress: IngestProgress | None = None,
) -> IngestReport:
    """Bring one library folder's catalogue entries and vectors in line with the disk."""
    started = time.monotonic()
    root = root.expanduser().resolve()
    if not root.is_dir():
        raise LibraryError(f"{root}: not a folder")
    with sessions() as session, session.begin():
        library, moved_note = resolve_library(session, root, name)
        state = library_state(session, library.id, space)
        failures = library_failures(session, library.id)
        run = start_run(session, library.id)
        library_id, library_name, run_id = library.id, library.name, run.id
    report = IngestReport(library_name, str(root), dry_run=options.dry_run)
    if moved_note:
        report.notes.append(moved_note)
    plan = plan_library(root, state, failures, target_rate, settings.max_duration_s, options.retry_failed)
    report.unchanged = plan.unchanged
    report.failed += plan.scan_problems + plan.known_failures
    if progress is not None:
        progress.start(library_name, len(plan.jobs))
    if options.dry_run:
        report.indexed = [j.rel_path for j in plan.jobs if j.rel_path not in state]
        report.updated = [j.rel_path for j in plan.jobs if j.rel_path in state]
        report.removed = sorted(plan.gone)
        _finish_run(sessions, run_id, report, RunStatus.finished)
        report.wall_s = time.monotonic() - started
        return report
    work = LibraryIngest(sessions, library_id, space, space_index, vectors, plan, state, report, progress)
    status, error = RunStatus.failed, None
    try:
        with DecodePool(options.workers) as pool:
            work.run(pool, encoder, batch_segments=4 * settings.batch_size)
        status = RunStatus.finished
    except KeyboardInterrupt:
        status = RunStatus.interrupted
        raise
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        space_index.save()
        report.wall_s = time.monotonic() - started
        _finish_run(sessions, run_id, report, status, error)
    return report


def _finish_run(
    sessions: Callable[[], Session], run_id: int, report: IngestReport, status: RunStatus, error: str | None = None
) -> None:
    counts = report.counts()
    with sessions() as session, session.begin():
        run = session.get(IngestRun, run_id)
        if run is None:
            return
        run.status, run.finished_at, run.error = status, utcnow(), error
        run.seen = sum(counts.values()) - counts["removed"]
        run.indexed, run.updated, run.moved = counts["indexed"], counts["updated"], counts["moved"]
        run.unchanged, run.failed, run.removed = counts["unchanged"], counts["failed"], counts["removed"]
        run.audio_s = report.audio_s
