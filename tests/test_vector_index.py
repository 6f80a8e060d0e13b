"""The FAISS index of a space: exact and IVF search, ids, persistence, mismatch detection, DB repair."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from soundsearch.indexer import vector_index
from soundsearch.indexer.vector_index import (
    GPU_MAX_K,
    IndexIdentity,
    StaleIndexError,
    VectorIndex,
    ivf_nlist,
    manifest_path,
)

DIM = 32
IDENTITY = IndexIdentity(space="audio", model_name="mn04", model_version="abc123", dim=DIM, uid="u1")


def random_vectors(n: int, rng: np.random.Generator, dim: int = DIM) -> np.ndarray:
    return rng.standard_normal((n, dim)).astype(np.float32)


def embedding_like(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """Random points near a random 16-dimensional subspace: like audio embeddings, which vary along far
    fewer directions than they have dimensions (isotropic noise has no near neighbours worth finding)."""
    basis = rng.standard_normal((16, dim))
    return (rng.standard_normal((n, 16)) @ basis + 0.3 * rng.standard_normal((n, dim))).astype(np.float32)


def brute_force(x: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    sims = qn @ xn.T
    order = np.argsort(-sims, axis=1)[:, :k]
    return np.take_along_axis(sims, order, axis=1), ids[order]


def filled(n: int, seed: int = 0, **kwargs: int) -> tuple[VectorIndex, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.choice(10**9, size=n, replace=False).astype(np.int64)
    x = embedding_like(n, DIM, rng)
    index = VectorIndex(IDENTITY, **kwargs)
    index.add(ids, x)
    return index, ids, x


def test_exact_search_matches_numpy_brute_force() -> None:
    index, ids, x = filled(500)
    q = random_vectors(20, np.random.default_rng(1))
    want_scores, want_ids = brute_force(x, ids, q, 10)
    hits = index.search(q, 10)
    assert index.kind == "exact" and index.ntotal == 500
    np.testing.assert_array_equal(np.stack([h.ids for h in hits]), want_ids)
    np.testing.assert_allclose(np.stack([h.scores for h in hits]), want_scores, atol=1e-5)
    # A 1-D query is one row, and an item finds itself with cosine 1.
    (own,) = index.search(x[3] * 7.0, 1)
    assert own.ids.tolist() == [ids[3]] and own.scores[0] == pytest.approx(1.0, abs=1e-5)


def test_missing_results_are_filtered_out() -> None:
    empty = VectorIndex(IDENTITY)
    assert [len(h.ids) for h in empty.search(random_vectors(2, np.random.default_rng(0)), 5)] == [0, 0]
    index, ids, _ = filled(3)
    (hits,) = index.search(random_vectors(1, np.random.default_rng(1)), 10)
    assert sorted(hits.ids.tolist()) == sorted(ids.tolist())
    assert np.all(np.diff(hits.scores) <= 0)


def test_add_replaces_a_stored_id_and_refuses_bad_input() -> None:
    index, ids, x = filled(50)
    index.add(ids[:1], -x[:1])
    assert index.ntotal == 50
    (hits,) = index.search(-x[0], 1)
    assert hits.ids[0] == ids[0] and hits.scores[0] == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="distinct"):
        index.add(np.array([1, 1]), x[:2])
    with pytest.raises(ValueError, match="dim"):
        index.add(np.array([1]), np.ones((1, DIM + 1), np.float32))


@pytest.mark.parametrize("exact_max", [10_000, 100], ids=["exact", "ivf"])
def test_remove_ids(exact_max: int) -> None:
    index, ids, x = filled(400, exact_max=exact_max)
    gone = ids[:150]
    assert index.remove(np.concatenate([gone, [-5, 123]])) == 150
    assert index.ntotal == 250
    np.testing.assert_array_equal(index.ids(), np.sort(ids[150:]))
    found = np.concatenate([h.ids for h in index.search(x[:150], 10)])
    assert not np.isin(found, gone).any()


def test_ivf_recall_at_10_against_exact() -> None:
    rng = np.random.default_rng(7)
    n, dim = 20_000, 64
    ids = np.arange(n, dtype=np.int64) * 3 + 1
    x = embedding_like(n, dim, rng)
    queries = x[rng.choice(n, 200, replace=False)] + 0.1 * x.std() * rng.standard_normal((200, dim)).astype(np.float32)
    identity = IndexIdentity("audio", "mn04", "abc123", dim, "u1")
    exact, ivf = VectorIndex(identity), VectorIndex(identity, exact_max=5_000)
    exact.rebuild(ids, x)
    ivf.rebuild(ids, x)
    assert (exact.kind, ivf.kind) == ("exact", "ivf")
    assert ivf._index.nlist == ivf_nlist(n) == 512 and ivf._index.nprobe == 32
    truth, got = exact.search(queries, 10), ivf.search(queries, 10)
    recall = np.mean([len(np.intersect1d(t.ids, g.ids)) / 10 for t, g in zip(truth, got, strict=True)])
    assert recall >= 0.9, f"IVF recall@10 {recall:.3f} (nlist 512, nprobe 32)"


def test_exact_index_becomes_ivf_past_the_threshold() -> None:
    index, ids, x = filled(800, exact_max=1_000)
    rng = np.random.default_rng(3)
    more_ids = np.arange(600, dtype=np.int64)
    more = embedding_like(600, DIM, rng)
    index.add(more_ids, more)
    assert index.kind == "ivf" and index.ntotal == 1_400
    np.testing.assert_array_equal(index.ids(), np.sort(np.concatenate([ids, more_ids])))
    hits = index.search(x[:20], 1)
    assert [h.ids[0] for h in hits] == ids[:20].tolist()


@pytest.mark.parametrize("exact_max", [10_000, 500], ids=["exact", "ivf"])
def test_save_then_load_gives_identical_results(tmp_path: Path, exact_max: int) -> None:
    index, ids, _ = filled(2_000, exact_max=exact_max)
    path = manifest_path(tmp_path, IDENTITY)
    index.save(path)
    index.remove(ids[:10])
    index.save(path)  # the second save replaces the first file
    assert len(list(path.parent.glob("*.faiss"))) == 1
    loaded = VectorIndex.load(path, IDENTITY, exact_max=exact_max)
    assert (loaded.kind, loaded.ntotal) == (index.kind, 1_990)
    np.testing.assert_array_equal(loaded.ids(), index.ids())
    q = random_vectors(30, np.random.default_rng(5))
    for a, b in zip(index.search(q, 10), loaded.search(q, 10), strict=True):
        np.testing.assert_array_equal(a.ids, b.ids)
        np.testing.assert_array_equal(a.scores, b.scores)


def test_a_crash_during_save_leaves_the_previous_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index, ids, _ = filled(100)
    path = manifest_path(tmp_path, IDENTITY)
    index.save(path)
    index.remove(ids[:40])

    class Killed(Exception):
        pass

    def die(*args: object) -> None:  # the process dies after writing the new file, before the manifest
        raise Killed

    monkeypatch.setattr(vector_index, "_write_atomic", die)
    with pytest.raises(Killed):
        index.save(path)
    monkeypatch.undo()
    assert len(list(path.parent.glob("*.faiss"))) == 2
    assert VectorIndex.load(path, IDENTITY).ntotal == 100
    index.save(path)
    assert len(list(path.parent.glob("*.faiss"))) == 1
    assert VectorIndex.load(path, IDENTITY).ntotal == 60


def test_load_refuses_an_index_of_another_model_or_size(tmp_path: Path) -> None:
    index, _, _ = filled(100)
    path = manifest_path(tmp_path, IDENTITY)
    index.save(path)
    for other in (
        IndexIdentity("audio", "mn04", "def456", DIM, "u1"),
        IndexIdentity("audio", "panns", "abc123", DIM, "u1"),
        IndexIdentity("audio", "mn04", "abc123", DIM * 2, "u1"),
        IndexIdentity("audio", "mn04", "abc123", DIM, "u2"),
    ):
        with pytest.raises(StaleIndexError, match="soundsearch reindex"):
            VectorIndex.load(path, other)


def test_load_detects_a_torn_or_missing_index(tmp_path: Path) -> None:
    path = manifest_path(tmp_path, IDENTITY)
    with pytest.raises(FileNotFoundError):
        VectorIndex.load(path, IDENTITY)
    index, _, _ = filled(100)
    index.save(path)
    manifest = path.read_text()
    path.write_text(manifest.replace('"count": 100', '"count": 99'))
    with pytest.raises(StaleIndexError, match="manifest says 99"):
        VectorIndex.load(path, IDENTITY)
    path.write_text(manifest)
    next(path.parent.glob("*.faiss")).unlink()
    with pytest.raises(StaleIndexError, match="soundsearch reindex"):
        VectorIndex.load(path, IDENTITY)
    path.write_text("{")
    with pytest.raises(StaleIndexError, match="not an index manifest"):
        VectorIndex.load(path, IDENTITY)


def test_rebuild_replaces_the_content() -> None:
    index, _, _ = filled(300)
    rng = np.random.default_rng(9)
    new_ids = np.arange(50, dtype=np.int64)
    index.rebuild(new_ids, random_vectors(50, rng))
    np.testing.assert_array_equal(index.ids(), new_ids)
    index.rebuild(new_ids[:0], random_vectors(0, rng))
    assert index.ntotal == 0


def test_sync_repairs_an_index_that_missed_writes() -> None:
    """What start-up does after a crash: the DB's ids are the truth, the index catches up."""
    rng = np.random.default_rng(11)
    db = dict(enumerate(embedding_like(300, DIM, rng), start=1))
    index = VectorIndex(IDENTITY)
    stale = [*range(1, 201), 900, 901]  # lacks 201..300; still has two deleted segments
    index.add(np.array(stale), np.stack([db.get(i, np.ones(DIM, np.float32)) for i in stale]))
    asked: list[int] = []

    def fetch(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        asked.extend(ids.tolist())
        return ids, np.stack([db[int(i)] for i in ids])

    assert index.sync(np.array(sorted(db)), fetch) == (100, 2)
    assert asked == list(range(201, 301))
    np.testing.assert_array_equal(index.ids(), np.arange(1, 301))
    assert index.sync(np.array(sorted(db)), fetch) == (0, 0)


def test_no_gpu_code_runs_on_faiss_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """faiss-cpu may still be asked for GPUs; without `StandardGpuResources` the index stays on CPU."""
    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 1)
    monkeypatch.delattr(faiss, "StandardGpuResources", raising=False)
    assert not vector_index.gpu_available()
    index, ids, x = filled(50)
    assert index.search(x[0], 1)[0].ids[0] == ids[0]


def test_searches_use_one_gpu_copy_until_the_index_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The GPU path, with faiss's GPU entry points stubbed by CPU clones (the edge we cannot run here)."""
    copies: list[faiss.Index] = []

    def to_gpu(resources: object, device: int, index: faiss.Index) -> faiss.Index:
        copies.append(faiss.clone_index(index))
        return copies[-1]

    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 1)
    monkeypatch.setattr(faiss, "StandardGpuResources", object, raising=False)
    monkeypatch.setattr(faiss, "index_cpu_to_gpu", to_gpu, raising=False)
    vector_index._gpu_resources.cache_clear()
    try:
        index, ids, x = filled(100)
        index.search(x[:2], 5)
        index.search(x[:2], 5)
        assert len(copies) == 1
        index.remove(ids[:1])
        assert index.search(x[0], 1)[0].ids[0] != ids[0]
        assert len(copies) == 2
        index.search(x[0], GPU_MAX_K + 1)  # beyond the GPU's k: the CPU index answers
        assert len(copies) == 2
    finally:
        vector_index._gpu_resources.cache_clear()


def test_manifest_path_is_beside_the_db_and_named_by_space_uid() -> None:
    assert manifest_path(Path("/data"), IDENTITY) == Path("/data/indexes/audio-u1.json")
    for space, uid in (("../audio", "u1"), ("audio", "../u1")):
        with pytest.raises(ValueError):
            manifest_path(Path("/data"), IndexIdentity(space, "mn04", "abc123", DIM, uid))
