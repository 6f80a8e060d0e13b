"""The catalogue DB against a real SQLite file and a real PostgreSQL server (`scripts/postgres.sh`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, delete, func, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from soundsearch.indexer.db import (
    SQLITE_FILE,
    Base,
    Embedding,
    EmbeddingSpace,
    IngestRun,
    Library,
    RunStatus,
    Segment,
    SegmentTag,
    Sound,
    SoundTag,
    SpaceMismatchError,
    create_schema,
    ensure_space,
    load_vectors,
    make_engine,
    pack_vector,
    reset_space,
    session_factory,
    space_segment_ids,
    unpack_vector,
    unpack_vectors,
)
from soundsearch.indexer.vector_index import IndexIdentity, VectorIndex

PG_URL_VAR = "SOUNDSEARCH_TEST_PG_URL"
DIM = 8


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A fresh, empty schema on each backend."""
    if request.param == "sqlite":
        eng = make_engine(None, tmp_path / "home")
    else:
        url = os.environ.get(PG_URL_VAR)
        if not url:
            pytest.skip(f'PostgreSQL tests need {PG_URL_VAR}: run `eval "$(bash scripts/postgres.sh)"` first')
        eng = make_engine(url, tmp_path / "home")
        Base.metadata.drop_all(eng)
    create_schema(eng)
    yield eng
    if request.param == "postgresql":
        Base.metadata.drop_all(eng)
    eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with session_factory(engine)() as s:
        yield s


def new_sound(library: Library, rel_path: str, segments: int = 2) -> Sound:
    sound = Sound(
        library=library,
        rel_path=rel_path,
        content_hash="ab" * 32,
        size=1234,
        mtime=1.7e9,
        duration_s=segments * 5.0,
        sample_rate=48_000,
        channels=2,
        format="WAV",
        description="BWF: door slam",
    )
    sound.segments = [Segment(position=i, start_s=i * 5.0, end_s=i * 5.0 + 10.0) for i in range(segments)]
    return sound


def count(session: Session, model: type[Base]) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_schema_has_every_table_and_can_be_created_again(engine: Engine) -> None:
    create_schema(engine)
    assert set(inspect(engine).get_table_names()) >= {
        "libraries",
        "sounds",
        "segments",
        "sound_tags",
        "segment_tags",
        "embedding_spaces",
        "embeddings",
        "ingest_runs",
    }
    indexes = {ix["name"] for ix in inspect(engine).get_indexes("sound_tags")}
    assert "ix_sound_tags_label_score" in indexes


def test_default_database_is_a_sqlite_file_in_wal_mode(tmp_path: Path) -> None:
    home = tmp_path / "home"
    engine = make_engine(None, home)
    create_schema(engine)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    engine.dispose()
    assert (home / SQLITE_FILE).is_file()


def test_a_bare_postgresql_url_gets_the_psycopg_driver(tmp_path: Path) -> None:
    engine = make_engine("postgresql://u:p@db.example/catalogue", tmp_path)
    assert engine.url.drivername == "postgresql+psycopg"


def test_same_rel_path_twice_in_one_library_is_refused(session: Session) -> None:
    one, two = Library(name="one", root="/sfx/one"), Library(name="two", root="/sfx/two")
    session.add_all([new_sound(one, "doors/slam.wav"), new_sound(two, "doors/slam.wav")])
    session.commit()  # the same path in another library is another file
    session.add(new_sound(one, "doors/slam.wav"))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()
    session.add(Library(name="one", root="/elsewhere"))
    with pytest.raises(IntegrityError):
        session.commit()


def test_deleting_a_sound_or_library_cascades_in_the_database(session: Session) -> None:
    library = Library(name="lib", root="/sfx")
    keep, drop = new_sound(library, "keep.wav"), new_sound(library, "drop.wav", segments=3)
    session.add_all([keep, drop])
    space = ensure_space(session, "audio", "mn04", "v1", DIM)
    session.flush()
    for sound in (keep, drop):
        sound.tags = [SoundTag(label=0, score=0.9), SoundTag(label=5, score=0.1)]
        for seg in sound.segments:
            seg.tags = [SegmentTag(label=0, score=0.8)]
            session.add(Embedding(space_id=space.id, segment_id=seg.id, vector=pack_vector(np.ones(DIM))))
    session.commit()

    # Core deletes, so the database's ON DELETE CASCADE does the work, not the ORM.
    session.execute(delete(Sound).where(Sound.id == drop.id))
    session.commit()
    assert [count(session, m) for m in (Sound, Segment, SoundTag, SegmentTag, Embedding)] == [1, 2, 2, 2, 2]
    session.execute(delete(Library))
    session.commit()
    assert [count(session, m) for m in (Sound, Segment, SoundTag, SegmentTag, Embedding)] == [0] * 5
    assert count(session, EmbeddingSpace) == 1


def test_vectors_round_trip_exactly(session: Session) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((5, DIM))  # float64 in, float32 stored
    assert len(pack_vector(vectors[0])) == DIM * 4
    np.testing.assert_array_equal(unpack_vector(pack_vector(vectors[0]), DIM), vectors[0].astype(np.float32))

    library = Library(name="lib", root="/sfx")
    sound = new_sound(library, "a.wav", segments=5)
    session.add(sound)
    space = ensure_space(session, "audio", "mn04", "v1", DIM)
    session.flush()
    seg_ids = [s.id for s in sound.segments]
    session.add_all(
        Embedding(space_id=space.id, segment_id=i, vector=pack_vector(v)) for i, v in zip(seg_ids, vectors, strict=True)
    )
    session.commit()
    ids, stored = load_vectors(session, space)
    assert ids.tolist() == sorted(seg_ids) and stored.dtype == np.float32
    np.testing.assert_array_equal(stored, vectors.astype(np.float32))
    with pytest.raises(ValueError):
        unpack_vectors([pack_vector(vectors[0])], DIM + 1)
    with pytest.raises(ValueError):
        pack_vector(vectors)


def test_tag_search_by_label_is_ordered_by_score_and_uses_the_index(session: Session, engine: Engine) -> None:
    library = Library(name="lib", root="/sfx")
    scores = {"a.wav": 0.2, "b.wav": 0.9, "c.wav": 0.5, "d.wav": None}
    for name, score in scores.items():
        sound = new_sound(library, name)
        sound.tags = [SoundTag(label=74, score=0.99)] + ([SoundTag(label=0, score=score)] if score else [])
        session.add(sound)
    session.commit()
    query = (
        select(Sound.rel_path, SoundTag.score)
        .join(SoundTag, SoundTag.sound_id == Sound.id)
        .where(SoundTag.label == 0)
        .order_by(SoundTag.score.desc())
    )
    rows = session.execute(query).all()
    assert [r.rel_path for r in rows] == ["b.wav", "c.wav", "a.wav"]
    assert rows[0].score == pytest.approx(0.9)
    if engine.dialect.name == "sqlite":
        sql = query.compile(engine, compile_kwargs={"literal_binds": True})
        plan = " ".join(str(row) for row in session.connection().exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
        assert "ix_sound_tags_label_score" in plan


def test_a_space_of_another_model_is_refused_until_reset(session: Session) -> None:
    space = ensure_space(session, "audio", "mn04", "v1", DIM)
    assert ensure_space(session, "audio", "mn04", "v1", DIM).id == space.id
    library = Library(name="lib", root="/sfx")
    sound = new_sound(library, "a.wav")
    session.add(sound)
    session.flush()
    session.add(Embedding(space_id=space.id, segment_id=sound.segments[0].id, vector=pack_vector(np.ones(DIM))))
    session.commit()
    with pytest.raises(SpaceMismatchError, match="soundsearch reindex"):
        ensure_space(session, "audio", "mn10", "v1", 16)
    reset_space(session, space, "mn10", "v1", 16)
    session.commit()
    assert ensure_space(session, "audio", "mn10", "v1", 16).id == space.id
    assert space_segment_ids(session, space).size == 0


def test_segment_ids_are_never_reused(session: Session) -> None:
    """A deleted segment's id must not come back: a stale FAISS entry would point at the new segment."""
    library = Library(name="lib", root="/sfx")
    sound = new_sound(library, "a.wav", segments=3)
    session.add(sound)
    session.commit()
    highest = max(s.id for s in sound.segments)
    session.execute(delete(Segment))
    session.commit()
    again = new_sound(library, "b.wav", segments=1)
    session.add(again)
    session.commit()
    assert again.segments[0].id > highest


def test_an_index_rebuilt_or_synced_from_the_db_matches_it(session: Session) -> None:
    rng = np.random.default_rng(1)
    library = Library(name="lib", root="/sfx")
    sounds = [new_sound(library, f"{i}.wav", segments=100) for i in range(12)]
    session.add_all(sounds)
    space = ensure_space(session, "audio", "mn04", "v1", DIM)
    session.flush()
    seg_ids = [seg.id for s in sounds for seg in s.segments]
    vectors = rng.standard_normal((len(seg_ids), DIM)).astype(np.float32)
    session.add_all(
        Embedding(space_id=space.id, segment_id=i, vector=pack_vector(v)) for i, v in zip(seg_ids, vectors, strict=True)
    )
    session.commit()

    identity = IndexIdentity(space.name, space.model_name, space.model_version, space.dim, space.uid)
    rebuilt = VectorIndex(identity)
    rebuilt.rebuild(*load_vectors(session, space))
    np.testing.assert_array_equal(rebuilt.ids(), space_segment_ids(session, space))

    # An index that saw only the first half, then the last sound was deleted: sync fetches 1,000+ ids.
    behind = VectorIndex(identity)
    behind.add(np.array(seg_ids[:600]), vectors[:600])
    session.execute(delete(Sound).where(Sound.id == sounds[-1].id))
    session.commit()
    db_ids = space_segment_ids(session, space)
    added, removed = behind.sync(db_ids, lambda ids: load_vectors(session, space, ids))
    assert (added, removed) == (500, 0)
    np.testing.assert_array_equal(behind.ids(), db_ids)
    hits = behind.search(vectors[700], 1)[0]
    assert hits.ids[0] == seg_ids[700]


def test_ingest_run_records_its_outcome(session: Session) -> None:
    run = IngestRun()
    session.add(run)
    session.commit()
    assert (run.status, run.seen, run.indexed, run.finished_at) == (RunStatus.running, 0, 0, None)
    run.status, run.indexed = RunStatus.finished, 3
    session.commit()
    session.expire_all()
    assert session.get(IngestRun, run.id).status is RunStatus.finished
