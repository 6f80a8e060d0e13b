"""Ingest on real sound files: incremental re-runs, changes, moves, removals, and DB/index consistency."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from soundsearch.config import Settings
from soundsearch.indexer import decode, runner
from soundsearch.indexer.catalog import LibraryError
from soundsearch.indexer.db import Embedding, IngestRun, RunStatus, Segment, Sound, SpaceMismatchError
from soundsearch.indexer.ingest import IngestOptions, plan_library
from soundsearch.indexer.runner import Catalog, index_paths, reindex
from soundsearch.indexer.scan import LibraryScan, ScannedFile
from soundsearch.indexer.spaces import AUDIO_SPACE, get_space, open_space_index

from .conftest import LIBRARY_FILES, copy_library

SMALL = {k: LIBRARY_FILES[k] for k in ("animals/LRBark_1_LA_cut.ogg", "animals/farm/cow.ogg", "weapons/sword-1.ogg")}
SMALL["weapons/explosion.ogg"] = LIBRARY_FILES["weapons/explosion.ogg"]


def settings_for(home: Path, **kw) -> Settings:
    return Settings(home=home, threads=2, workers=kw.pop("workers", 0), **kw)


def catalogue(settings: Settings) -> dict[str, tuple[int, list[int]]]:
    """{rel_path: (sound id, segment ids)}, after checking that the saved index matches the DB exactly."""
    catalog = Catalog.open(settings)
    try:
        with catalog.sessions() as session:
            space = get_space(session, AUDIO_SPACE)
            opened = open_space_index(settings.home, session, space)
            assert opened.repair is None, f"the saved index did not match the DB: {opened.repair}"
            db_ids = sorted(session.scalars(select(Embedding.segment_id).where(Embedding.space_id == space.id)))
            assert opened.index.ids().tolist() == db_ids
            out: dict[str, tuple[int, list[int]]] = {}
            for sound in session.scalars(select(Sound)):
                assert sound.rel_path not in out
                segs = session.scalars(select(Segment.id).where(Segment.sound_id == sound.id).order_by(Segment.id))
                out[sound.rel_path] = (sound.id, list(segs))
            return out
    finally:
        catalog.close()


def test_first_run_indexes_every_file_and_a_rerun_does_no_decoding_or_model_work(
    make_home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lib = copy_library(tmp_path / "lib", SMALL)
    settings = settings_for(make_home())
    (report,) = index_paths(settings, [lib])
    assert report.counts() == {"indexed": 4, "updated": 0, "moved": 0, "unchanged": 0, "removed": 0, "failed": 0}
    assert report.audio_s > 0
    before = catalogue(settings)
    assert sorted(before) == sorted(SMALL)

    def forbidden(*_a, **_k):
        raise AssertionError("an unchanged library must not be decoded or encoded")

    monkeypatch.setattr(decode, "load_audio", forbidden)
    monkeypatch.setattr(runner, "open_encoder", forbidden)
    (again,) = index_paths(settings, [lib])
    assert again.counts()["unchanged"] == 4 and sum(again.counts().values()) == 4
    assert catalogue(settings) == before


def test_touched_changed_moved_and_deleted_files(make_home, tmp_path: Path) -> None:
    lib = copy_library(tmp_path / "lib", SMALL)
    settings = settings_for(make_home())
    index_paths(settings, [lib])
    before = catalogue(settings)

    bark, cow, sword, boom = (lib / rel for rel in SMALL)
    os.utime(bark, (1_000_000_000, 1_000_000_000))  # touched: same bytes, new mtime
    shutil.copyfile(boom, cow)  # changed content under the same name
    (lib / "moved").mkdir()
    sword.rename(lib / "moved" / "sword-1.ogg")  # moved within the library
    boom.unlink()  # deleted
    (report,) = index_paths(settings, [lib])

    assert report.unchanged == 1
    assert report.updated == ["animals/farm/cow.ogg"]
    assert report.moved == [("weapons/sword-1.ogg", "moved/sword-1.ogg")]
    assert report.removed == ["weapons/explosion.ogg"]
    assert report.audio_s > 0 and not report.indexed and not report.failed
    after = catalogue(settings)
    assert after["animals/LRBark_1_LA_cut.ogg"] == before["animals/LRBark_1_LA_cut.ogg"]
    assert after["moved/sword-1.ogg"] == before["weapons/sword-1.ogg"]  # same sound, same vectors, no model work
    assert after["animals/farm/cow.ogg"][0] == before["animals/farm/cow.ogg"][0]
    assert not set(after["animals/farm/cow.ogg"][1]) & set(before["animals/farm/cow.ogg"][1])  # new segments
    assert "weapons/explosion.ogg" not in after


def test_runs_are_recorded_and_dry_run_writes_nothing(make_home, tmp_path: Path) -> None:
    lib = copy_library(tmp_path / "lib", SMALL)
    settings = settings_for(make_home())
    (dry,) = index_paths(settings, [lib], options=IngestOptions(dry_run=True))
    assert dry.dry_run and len(dry.indexed) == 4 and dry.audio_s == 0
    (real,) = index_paths(settings, [lib])
    assert len(real.indexed) == 4  # the dry run stored nothing
    catalog = Catalog.open(settings)
    with catalog.sessions() as session:
        runs = list(session.scalars(select(IngestRun).order_by(IngestRun.id)))
    catalog.close()
    assert [r.status for r in runs] == [RunStatus.finished, RunStatus.finished]
    assert (runs[1].indexed, runs[1].failed, runs[1].seen) == (4, 0, 4)


def test_library_names_and_roots(make_home, tmp_path: Path) -> None:
    a = copy_library(tmp_path / "a" / "sfx", SMALL)
    b = copy_library(tmp_path / "b" / "sfx", SMALL)
    settings = settings_for(make_home())
    first, clash = index_paths(settings, [a, b])
    assert first.library == "sfx" and not first.error
    assert clash.error and "--library" in clash.error
    (named,) = index_paths(settings, [b], library="sfx-b")
    assert named.library == "sfx-b" and len(named.indexed) == 4
    # The library folder moved: --library re-points it, and its files are recognised, not re-encoded.
    moved = tmp_path / "elsewhere"
    shutil.copytree(a, moved, copy_function=shutil.copy2)
    (again,) = index_paths(settings, [moved], library="sfx")
    assert again.unchanged == 4 and any("moved from" in n for n in again.notes)
    (missing,) = index_paths(settings, [tmp_path / "nope"])
    assert missing.error and "not a folder" in missing.error
    with pytest.raises(ValueError, match="one folder"):
        index_paths(settings, [a, b], library="x")


def test_another_model_is_refused_until_reindex_and_reindex_rebuilds_from_the_db(make_home, tmp_path: Path) -> None:
    lib = copy_library(tmp_path / "lib", SMALL)
    settings = settings_for(make_home())
    index_paths(settings, [lib])
    before = catalogue(settings)
    for path in (settings.home / "indexes").iterdir():
        path.unlink()  # the index files are only a cache
    result = reindex(settings)
    assert result.vectors == sum(len(segs) for _, segs in before.values())
    assert catalogue(settings) == before
    catalog = Catalog.open(settings)
    with catalog.sessions() as session, session.begin():
        get_space(session, AUDIO_SPACE).model_version = "mn04@0000000000000000"  # as if made by other weights
    catalog.close()
    with pytest.raises(SpaceMismatchError, match="soundsearch reindex"):
        index_paths(settings, [lib])


def test_files_under_an_unlistable_folder_are_not_taken_for_deleted(monkeypatch: pytest.MonkeyPatch) -> None:
    from soundsearch.indexer import ingest
    from soundsearch.indexer.catalog import SoundState

    scan = LibraryScan([ScannedFile("a.wav", 10, 1.0)], unreadable=["locked"])
    monkeypatch.setattr(ingest, "scan_library", lambda root: scan)
    state = {
        "a.wav": SoundState(1, 10, 1.0, "h1", True),
        "locked/b.wav": SoundState(2, 10, 1.0, "h2", True),
        "gone.wav": SoundState(3, 10, 1.0, "h3", True),
    }
    plan = plan_library(Path("/lib"), state, {}, 32000, 60.0)
    assert plan.unchanged == 1 and not plan.jobs
    assert list(plan.gone) == ["gone.wav"]
    monkeypatch.setattr(ingest, "scan_library", lambda root: LibraryScan([], unreadable=[""]))
    with pytest.raises(LibraryError, match="cannot list"):
        plan_library(Path("/lib"), state, {}, 32000, 60.0)


def test_new_file_of_a_vanished_ones_size_is_offered_its_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    from soundsearch.indexer import ingest
    from soundsearch.indexer.catalog import SoundState

    scan = LibraryScan([ScannedFile("new.wav", 10, 2.0), ScannedFile("other.wav", 11, 2.0)])
    monkeypatch.setattr(ingest, "scan_library", lambda root: scan)
    state = {"old.wav": SoundState(1, 10, 1.0, "h1", True)}
    plan = plan_library(Path("/lib"), state, {}, 32000, 60.0)
    hashes = {j.rel_path: j.known_hashes for j in plan.jobs}
    assert hashes == {"new.wav": ("h1",), "other.wav": ()}


def test_vectors_in_the_db_are_the_encoders_example_vectors(make_home, tmp_path: Path, mn04_encoder, vocab) -> None:
    from soundsearch.audio import load_audio
    from soundsearch.encoders.example_vector import ExampleVectors
    from soundsearch.indexer.db import unpack_vectors

    lib = copy_library(tmp_path / "lib", SMALL)
    settings = settings_for(make_home())
    index_paths(settings, [lib])
    audio = load_audio(lib / "animals/farm/cow.ogg", target_rate=32000)
    encoded = mn04_encoder.encode(audio.samples, audio.sample_rate)
    expected = ExampleVectors(vocab, settings.example_tag_weight)(encoded.embeddings, encoded.tags)
    assert expected.shape == (len(encoded.starts), 384 + 527)
    catalog = Catalog.open(settings)
    with catalog.sessions() as session:
        blobs = session.scalars(
            select(Embedding.vector)
            .join(Segment, Segment.id == Embedding.segment_id)
            .join(Sound, Sound.id == Segment.sound_id)
            .where(Sound.rel_path == "animals/farm/cow.ogg")
            .order_by(Segment.position)
        ).all()
    catalog.close()
    np.testing.assert_allclose(unpack_vectors(blobs, expected.shape[1]), expected, rtol=1e-4, atol=1e-5)


def test_postgresql_catalogue_ingest_rerun_and_search(make_home, tmp_path: Path) -> None:
    """The same pipeline against a real PostgreSQL server (`scripts/postgres.sh`), not only SQLite."""
    from soundsearch.indexer.db import Base, make_engine
    from soundsearch.search.engine import SearchEngine, SearchRequest

    url = os.environ.get("SOUNDSEARCH_TEST_PG_URL")
    if not url:
        pytest.skip('PostgreSQL tests need SOUNDSEARCH_TEST_PG_URL: run `eval "$(bash scripts/postgres.sh)"` first')
    engine = make_engine(url, tmp_path)
    Base.metadata.drop_all(engine)
    try:
        lib = copy_library(tmp_path / "lib", SMALL)
        settings = settings_for(make_home(), db=url, workers=1)
        (first,) = index_paths(settings, [lib])
        assert len(first.indexed) == 4 and not first.failed
        (lib / "weapons/explosion.ogg").unlink()
        (second,) = index_paths(settings, [lib])
        assert second.unchanged == 3 and second.removed == ["weapons/explosion.ogg"]
        assert sorted(catalogue(settings)) == sorted(set(SMALL) - {"weapons/explosion.ogg"})
        search = SearchEngine(settings)
        try:
            top = search.search(SearchRequest(text="dog", k=1)).results[0]
            like = search.search(SearchRequest(audio=lib / "weapons/sword-1.ogg", k=1)).results[0]
        finally:
            search.close()
        assert top.rel_path == "animals/LRBark_1_LA_cut.ogg"
        assert like.rel_path == "weapons/sword-1.ogg" and like.score == pytest.approx(1.0, abs=1e-4)
    finally:
        Base.metadata.drop_all(engine)
        engine.dispose()


def test_search_repairs_a_missing_index_in_memory_and_writes_nothing(make_home, tmp_path: Path) -> None:
    from soundsearch.search.engine import SearchEngine, SearchRequest

    lib = copy_library(tmp_path / "lib", SMALL)
    settings = settings_for(make_home())
    index_paths(settings, [lib])
    for path in (settings.home / "indexes").iterdir():
        path.unlink()
    engine = SearchEngine(settings)
    try:
        top = engine.search(SearchRequest(audio=lib / "animals/farm/cow.ogg", k=1)).results[0]
    finally:
        engine.close()
    assert top.rel_path == "animals/farm/cow.ogg"
    assert not list((settings.home / "indexes").iterdir())  # only the writer (index/reindex) saves
