"""The catalogue database (SQLAlchemy 2): libraries, sounds, segments, tags, embeddings, ingest runs.

SQLite in WAL mode (one file under the data home) is the default; PostgreSQL is used when given a URL.
The DB is the source of truth: every FAISS index (see `vector_index`) is a cache that can be rebuilt
from the `embeddings` table.

Write order, so that `kill -9` at any moment loses nothing and duplicates nothing:

1. One transaction per sound: upsert the `sounds` row by (library, rel_path); delete its old segments
   (the cascade drops their tags and embeddings); insert segments, tags and embeddings; commit. A kill
   before the commit leaves the previous state, and the next run redoes that sound.
2. After the commit, add the new segment ids and vectors to the space's index (and remove the deleted
   ones); save it from time to time (`VectorIndex.save` is atomic).
3. On start, load the index and `VectorIndex.sync` it with `space_segment_ids`: ids the DB has and the
   index lacks are added from `load_vectors`, ids the index has and the DB lacks are removed. A missing
   or mismatched index is rebuilt from `load_vectors`.

This works because a segment id always names the same vector: vectors are never updated in place (a
changed sound gets new segments), segment ids are never reused (AUTOINCREMENT on SQLite, a sequence on
PostgreSQL), and a model change empties the space (`reset_space`) so every index of it is rebuilt.
SQLite's WAL with `synchronous=NORMAL` keeps every committed transaction when the process is killed;
only a power cut can lose the last few, and the DB stays consistent even then.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import (
    REAL,
    BigInteger,
    DateTime,
    Engine,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    func,
    select,
    update,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker

#: The SQLite file inside the data home when no database URL is given.
SQLITE_FILE = "soundsearch.db"
#: How long a SQLite connection waits for another writer's lock before failing.
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Vectors are stored as little-endian float32, so a DB file reads the same on every machine.
VECTOR_DTYPE = np.dtype("<f4")
#: Rows per chunk when reading all vectors of a space.
STREAM_ROWS = 10_000
#: Ids per `IN (...)` list: below SQLite's and PostgreSQL's bound-parameter limits.
ID_CHUNK = 900

#: Segment ids are FAISS ids (int64). SQLite only auto-increments an INTEGER PRIMARY KEY, hence the variant.
SegmentId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    """All tables; `create_schema` creates them."""


class Library(Base):
    """A folder of sounds the user added; sounds are stored relative to it so the folder can move."""

    __tablename__ = "libraries"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    root: Mapped[str] = mapped_column(Text)

    sounds: Mapped[list[Sound]] = relationship(
        back_populates="library", cascade="all, delete-orphan", passive_deletes=True
    )


class Sound(Base):
    """One audio file. The content hash and the model id decide whether it needs (re)indexing."""

    __tablename__ = "sounds"
    __table_args__ = (UniqueConstraint("library_id", "rel_path"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    library_id: Mapped[int] = mapped_column(ForeignKey("libraries.id", ondelete="CASCADE"))
    rel_path: Mapped[str] = mapped_column(Text)  # POSIX separators, relative to the library root
    content_hash: Mapped[str] = mapped_column(String(64), index=True)  # sha256 hex; finds moved copies
    size: Mapped[int] = mapped_column(BigInteger)  # bytes
    mtime: Mapped[float]  # seconds since the epoch, as os.stat gives it
    duration_s: Mapped[float]
    sample_rate: Mapped[int]  # of the file, not of the decoded audio
    channels: Mapped[int]
    format: Mapped[str] = mapped_column(String(32))  # e.g. "WAV", "FLAC", "MP3"
    title: Mapped[str | None] = mapped_column(Text)  # embedded metadata (ID3/Vorbis title) when present
    description: Mapped[str | None] = mapped_column(Text)  # e.g. the BWF description
    indexed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    library: Mapped[Library] = relationship(back_populates="sounds")
    segments: Mapped[list[Segment]] = relationship(
        back_populates="sound", cascade="all, delete-orphan", passive_deletes=True, order_by="Segment.position"
    )
    tags: Mapped[list[SoundTag]] = relationship(cascade="all, delete-orphan", passive_deletes=True)


class Segment(Base):
    """A window of a sound that the encoder saw; its id is the FAISS id of its vectors."""

    __tablename__ = "segments"
    # AUTOINCREMENT: SQLite would otherwise reuse the ids of deleted last rows, and a stale index entry
    # would then point at a new segment.
    __table_args__ = (UniqueConstraint("sound_id", "position"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(SegmentId, primary_key=True)
    sound_id: Mapped[int] = mapped_column(ForeignKey("sounds.id", ondelete="CASCADE"))
    position: Mapped[int]  # 0, 1, ... in time order within the sound
    start_s: Mapped[float]
    end_s: Mapped[float]

    sound: Mapped[Sound] = relationship(back_populates="segments")
    tags: Mapped[list[SegmentTag]] = relationship(cascade="all, delete-orphan", passive_deletes=True)


class SoundTag(Base):
    """A label score for a whole sound. Kept apart from segment scores so that the common tag search,
    `WHERE label = ? ORDER BY score DESC`, reads one short index range of sound rows only."""

    __tablename__ = "sound_tags"

    sound_id: Mapped[int] = mapped_column(ForeignKey("sounds.id", ondelete="CASCADE"), primary_key=True)
    label: Mapped[int] = mapped_column(SmallInteger, primary_key=True)  # index in the model's label list
    score: Mapped[float] = mapped_column(REAL)


class SegmentTag(Base):
    """A label score for one segment: where in a long file a sound happens."""

    __tablename__ = "segment_tags"

    segment_id: Mapped[int] = mapped_column(SegmentId, ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True)
    label: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    score: Mapped[float] = mapped_column(REAL)


Index("ix_sound_tags_label_score", SoundTag.label, SoundTag.score.desc())
Index("ix_segment_tags_label_score", SegmentTag.label, SegmentTag.score.desc())


class EmbeddingSpace(Base):
    """A set of comparable vectors (e.g. "audio"): one model, one version, one size, one FAISS index."""

    __tablename__ = "embedding_spaces"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    model_name: Mapped[str] = mapped_column(String(100))
    model_version: Mapped[str] = mapped_column(String(128))  # version or weights checksum
    dim: Mapped[int]
    # A new uid on every reset: index files are named by it, so an index built for another database or
    # before a rebuild can never be mistaken for this space's (segment ids alone would collide).
    uid: Mapped[str] = mapped_column(String(32), default=lambda: uuid.uuid4().hex)
    # Bumped by every transaction that adds or removes vectors; an index saved at the same generation
    # holds exactly the DB's vectors, so services check freshness with one primary-key read.
    generation: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Embedding(Base):
    """One segment's vector in one space (float32 bytes, not normalised: the index normalises)."""

    __tablename__ = "embeddings"
    # The primary key (space, segment) serves "all ids of a space"; the extra index serves the cascade.
    __table_args__ = (Index("ix_embeddings_segment_id", "segment_id"),)

    space_id: Mapped[int] = mapped_column(ForeignKey("embedding_spaces.id", ondelete="CASCADE"), primary_key=True)
    segment_id: Mapped[int] = mapped_column(SegmentId, ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)


class RunStatus(str, enum.Enum):
    running = "running"
    finished = "finished"
    failed = "failed"
    interrupted = "interrupted"  # found still "running" by a later run: the process was killed


class IngestRun(Base):
    """One library's pass of an `index` command: what it did, for the user and for spotting interrupted
    runs (a "running" row whose process on this host is gone)."""

    __tablename__ = "ingest_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    library_id: Mapped[int | None] = mapped_column(ForeignKey("libraries.id", ondelete="SET NULL"))
    host: Mapped[str] = mapped_column(String(255), default="")
    pid: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[RunStatus] = mapped_column(
        Enum(RunStatus, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]),
        default=RunStatus.running,
    )
    seen: Mapped[int] = mapped_column(default=0)
    indexed: Mapped[int] = mapped_column(default=0)  # new files
    updated: Mapped[int] = mapped_column(default=0)  # changed content, re-encoded
    moved: Mapped[int] = mapped_column(default=0)  # same content at a new path: vectors kept
    unchanged: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    removed: Mapped[int] = mapped_column(default=0)
    audio_s: Mapped[float] = mapped_column(default=0.0)  # seconds of audio decoded and encoded
    error: Mapped[str | None] = mapped_column(Text)


class IngestFailure(Base):
    """A file that could not be indexed, with why. Kept so an unchanged bad file is reported again
    without decoding it again, and retried as soon as its size or mtime changes."""

    __tablename__ = "ingest_failures"
    __table_args__ = (UniqueConstraint("library_id", "rel_path"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    library_id: Mapped[int] = mapped_column(ForeignKey("libraries.id", ondelete="CASCADE"))
    rel_path: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    mtime: Mapped[float]
    reason: Mapped[str] = mapped_column(Text)
    failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def make_engine(url: str | None, home: Path) -> Engine:
    """`home/soundsearch.db` (SQLite, WAL) when `url` is None; otherwise the URL's database. A bare
    `postgresql://` URL gets the psycopg 3 driver, the one soundsearch depends on."""
    if url is None:
        home.mkdir(parents=True, exist_ok=True)
        parsed = URL.create("sqlite+pysqlite", database=str(home / SQLITE_FILE))
    else:
        parsed = make_url(url)
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(parsed, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Per connection: WAL (readers never block the writer), foreign keys (SQLite ignores ON DELETE
    CASCADE without them), and a busy timeout instead of an immediate 'database is locked'."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def create_schema(engine: Engine) -> None:
    """Create missing tables and indexes (existing ones are left as they are)."""
    Base.metadata.create_all(engine)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (rows are handed to other threads and layers)."""
    return sessionmaker(engine, expire_on_commit=False)


def pack_vector(vector: np.ndarray) -> bytes:
    """A 1-D vector as little-endian float32 bytes (4 per dimension)."""
    array = np.asarray(vector)
    if array.ndim != 1:
        raise ValueError(f"expected one vector, got shape {array.shape}")
    return array.astype(VECTOR_DTYPE, copy=False).tobytes()


def unpack_vectors(blobs: Sequence[bytes], dim: int) -> np.ndarray:
    """(len(blobs), dim) native float32 matrix; one join and one conversion however many rows."""
    data = b"".join(blobs)
    if len(data) != len(blobs) * dim * VECTOR_DTYPE.itemsize:
        raise ValueError(f"{len(blobs)} stored vectors are not all {dim}-dimensional float32")
    return np.frombuffer(data, dtype=VECTOR_DTYPE).reshape(len(blobs), dim).astype(np.float32)


def unpack_vector(blob: bytes, dim: int) -> np.ndarray:
    """One stored vector, e.g. an existing sound's, to search with (query by example, no re-encoding)."""
    return unpack_vectors([blob], dim)[0]


class SpaceMismatchError(RuntimeError):
    """The space's vectors come from another model, version or size than the one asked for."""


def ensure_space(session: Session, name: str, model_name: str, model_version: str, dim: int) -> EmbeddingSpace:
    """The space `name`, created on first use. Vectors of another model are not comparable with the new
    ones, so a space made by another model, version or size is refused until it is rebuilt."""
    space = session.scalar(select(EmbeddingSpace).where(EmbeddingSpace.name == name))
    if space is None:
        space = EmbeddingSpace(name=name, model_name=model_name, model_version=model_version, dim=dim)
        session.add(space)
        session.flush()
        return space
    if (space.model_name, space.model_version, space.dim) != (model_name, model_version, dim):
        raise SpaceMismatchError(
            f"embedding space {name!r} holds vectors of {space.model_name} {space.model_version} "
            f"(dim {space.dim}), not {model_name} {model_version} (dim {dim}); "
            f"run `soundsearch reindex` to rebuild it with the new model"
        )
    return space


def reset_space(session: Session, space: EmbeddingSpace, model_name: str, model_version: str, dim: int) -> None:
    """Give the space a new model and drop its old vectors: the first step of a reindex."""
    session.execute(delete(Embedding).where(Embedding.space_id == space.id))
    space.model_name, space.model_version, space.dim = model_name, model_version, dim
    space.uid = uuid.uuid4().hex
    session.flush()
    bump_generations(session)


def bump_generations(session: Session) -> None:
    """Mark every space's vectors as changed (deleting a segment drops its vectors in all spaces)."""
    session.execute(update(EmbeddingSpace).values(generation=EmbeddingSpace.generation + 1))


def space_generation(session: Session, space_id: int) -> int:
    return int(session.scalar(select(EmbeddingSpace.generation).where(EmbeddingSpace.id == space_id)) or 0)


def space_segment_ids(session: Session, space: EmbeddingSpace) -> np.ndarray:
    """Sorted segment ids that have a vector in the space: exactly what its index must hold."""
    rows = session.scalars(
        select(Embedding.segment_id).where(Embedding.space_id == space.id).order_by(Embedding.segment_id)
    )
    return np.fromiter(rows, dtype=np.int64)


def load_vectors(
    session: Session, space: EmbeddingSpace, ids: Iterable[int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) of the space, sorted by id: all of them (to rebuild an index) or only `ids` (to top
    one up). Ids without a vector in the space are left out."""
    query = select(Embedding.segment_id, Embedding.vector).where(Embedding.space_id == space.id)
    if ids is None:
        return _stream_vectors(session, space, query.order_by(Embedding.segment_id))
    else:
        wanted = sorted({int(i) for i in ids})
        rows = []
        for start in range(0, len(wanted), ID_CHUNK):
            chunk = wanted[start : start + ID_CHUNK]
            rows += session.execute(query.where(Embedding.segment_id.in_(chunk)).order_by(Embedding.segment_id))
    found = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
    return found, unpack_vectors([row[1] for row in rows], space.dim)


def _stream_vectors(session: Session, space: EmbeddingSpace, query: Any) -> tuple[np.ndarray, np.ndarray]:
    """All of a space's vectors, read in chunks into one preallocated array: listing a million rows at
    once held 3 GB at peak, and the allocator kept most of it after the index was built."""
    expected = session.scalar(select(func.count()).select_from(Embedding).where(Embedding.space_id == space.id)) or 0
    ids = np.empty(expected, dtype=np.int64)
    vectors = np.empty((expected, space.dim), dtype=np.float32)
    filled = 0
    for part in session.execute(query.execution_options(yield_per=STREAM_ROWS)).partitions():
        if filled + len(part) > len(ids):  # rows committed since the count (PostgreSQL, read committed)
            ids = np.resize(ids, filled + len(part))
            vectors = np.resize(vectors, (filled + len(part), space.dim))
        ids[filled : filled + len(part)] = [row[0] for row in part]
        vectors[filled : filled + len(part)] = unpack_vectors([row[1] for row in part], space.dim)
        filled += len(part)
    return ids[:filled], vectors[:filled]
