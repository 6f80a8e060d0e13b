"""One FAISS index per embedding space: cosine similarity search over segment vectors.

Vectors are L2-normalised on the way in, so inner product is cosine similarity. FAISS ids are segment
ids. Up to `EXACT_MAX` vectors the index is exact (`IndexIDMap2` over `IndexFlatIP`; at 50,000 vectors of
512 dimensions one query scans 100 MB, about 30 ms on 2 cores). Above it, an IVF index (inner
product) with `ivf_nlist(n)` ≈ 4·√n lists, trained by k-means on a sample, probing `ivf_nprobe(nlist)`
lists (1/16 of them, at least 16) per query: a 16× smaller scan. A fixed nprobe would lose recall as the
index grows (each list covers less of the space); a fixed fraction keeps it. Measured recall@10 against
exact search, for random vectors near a 16-dimensional subspace (embeddings vary along far fewer
directions than they have): 0.95 / 0.99 / 0.99 at 20k / 100k / 200k vectors; near a 32-dimensional one
0.88 / 0.91 / 0.92. Isotropic noise (no structure) gets about 0.5: it has no near neighbours to find.
`tests/test_vector_index.py` checks recall >= 0.9. An exact index that grows past the threshold becomes
IVF on the next `add`; only `rebuild` goes back, since lists trained on more vectors still serve fewer.

The IVF lists hold vectors as 8-bit scalar-quantised codes (`IndexIVFScalarQuantizer`, QT_8bit), a
quarter of float32: the example vectors have 911 dimensions (mn04), so a million of them take 0.9 GB
instead of 3.7 GB. Measured at 200,000 such vectors (near a 32-dimensional subspace, 2 cores): 952 vs
3,685 bytes per vector, recall@10 0.87 vs 0.84 (quantisation error is far below the gaps between
neighbours), 10 ms vs 2 ms per query (decoding codes costs more than reading floats).

The index is a cache of the DB's `embeddings` table (see `db` for the write order): `save` is atomic,
`load` refuses an index of another space, model or size (`StaleIndexError`: run `soundsearch reindex`),
and `sync` repairs one that missed the last writes before a crash. With a faiss-gpu build and a GPU,
searches run on a GPU copy of the index; faiss-cpu has no `StandardGpuResources`, so it stays on CPU.
"""

from __future__ import annotations

import functools
import json
import os
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import faiss
import numpy as np

#: Largest exact index: above it, IVF.
EXACT_MAX = 50_000
#: Fewest IVF lists probed per query.
MIN_NPROBE = 16
#: Training points per IVF list: k-means wants at least 39; more costs time for little gain.
TRAIN_PER_LIST = 64
#: Largest k (and nprobe) that GPU indexes support; bigger searches run on the CPU copy.
GPU_MAX_K = 2048
#: Version of the manifest layout.
MANIFEST_FORMAT = 1
_SPACE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class IndexIdentity:
    """What an index holds: vectors of one space, made by one model version, of one size. Vectors made
    by another model are not comparable, so an index of another identity must be rebuilt."""

    space: str
    model_name: str
    model_version: str
    dim: int
    uid: str  # the space's uid in its database (`EmbeddingSpace.uid`): another DB or a rebuild differs


class StaleIndexError(RuntimeError):
    """A saved index that does not match its space, or is damaged: rebuild it from the DB."""


class Hits(NamedTuple):
    scores: np.ndarray  # (m,) float32 cosine similarity, best first; m <= k
    ids: np.ndarray  # (m,) int64 segment ids


def manifest_path(home: Path, identity: IndexIdentity) -> Path:
    """Where the space's index lives: beside the DB, in the data home's `indexes` folder, named by space
    and uid so that two databases used from one data home keep separate indexes."""
    for value in (identity.space, identity.uid):
        if not _SPACE_NAME.match(value):
            raise ValueError(f"space name and uid {value!r} must be letters, digits, '-' or '_'")
    return home / "indexes" / f"{identity.space}-{identity.uid}.json"


def ivf_nlist(n: int) -> int:
    """IVF lists for n vectors: ≈ 4·√n (FAISS's rule of thumb), with at least 39 vectors per list to
    train k-means on, and at most 65,536."""
    return int(max(1, min(4 * np.sqrt(n), n // 39, 65_536)))


def ivf_nprobe(nlist: int) -> int:
    """Lists probed per query: 1/16 of them, at least `MIN_NPROBE`, at most what GPUs allow."""
    return min(nlist, GPU_MAX_K, max(MIN_NPROBE, nlist // 16))


def gpu_available() -> bool:
    """A faiss-gpu build that sees a GPU. faiss-cpu reports 0 GPUs and lacks `StandardGpuResources`."""
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


@functools.cache
def _gpu_resources() -> object:
    """One set of GPU scratch memory and streams for the process: creating it costs time and memory."""
    return faiss.StandardGpuResources()


class VectorIndex:
    """The FAISS index of one embedding space. Thread-safe: one lock serialises writes and searches."""

    def __init__(self, identity: IndexIdentity, *, exact_max: int = EXACT_MAX, nprobe: int | None = None) -> None:
        self.identity = identity
        self.exact_max = exact_max
        self.nprobe = nprobe  # None: ivf_nprobe(nlist)
        self._index: faiss.Index = faiss.IndexIDMap2(faiss.IndexFlatIP(identity.dim))
        self._gpu: faiss.Index | None = None  # search copy, dropped on every change
        self._lock = threading.Lock()
        self._save_lock = threading.Lock()
        self._max_id: int | None = None  # cached; dropped on every change
        # The DB generation (`EmbeddingSpace.generation`) whose vectors this index holds; -1: unknown.
        # Set by the owner after each write it mirrors; saved in the manifest.
        self.generation = -1

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    @property
    def kind(self) -> str:
        """Which structure answers searches: "exact" (flat) or "ivf"."""
        return "ivf" if isinstance(self._index, faiss.IndexIVF) else "exact"

    def ids(self) -> np.ndarray:
        """Sorted segment ids in the index."""
        with self._lock:
            return np.sort(self._ids())

    def max_id(self) -> int | None:
        """The largest segment id (None when empty); cached, since services compare it on every query."""
        with self._lock:
            return self._known_max()

    def _known_max(self) -> int | None:
        if self._max_id is None and self.ntotal:
            self._max_id = int(self._ids().max())
        return self._max_id

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Insert vectors under their segment ids, replacing any already stored under those ids."""
        ids, x = self._checked(ids, vectors)
        if len(ids) == 0:
            return
        with self._lock:
            top = self._known_max()
            # `remove_ids` scans the whole index; new segment ids are above every stored one, so ingest
            # (which only adds new ids) never pays for it.
            if top is not None and ids.min() <= top:
                self._index.remove_ids(ids)
            self._index.add_with_ids(x, ids)
            if self.kind == "exact" and self.ntotal > self.exact_max:
                self._index = self._build(self._ids(), self._index.index.reconstruct_n(0, self.ntotal))
            self._gpu = None
            self._max_id = int(ids.max()) if top is None else max(top, int(ids.max()))

    def remove(self, ids: np.ndarray) -> int:
        """Drop these segment ids (absent ones are ignored); returns how many were removed."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        with self._lock:
            self._gpu = self._max_id = None
            return int(self._index.remove_ids(ids))

    def rebuild(self, ids: np.ndarray, vectors: np.ndarray, *, in_place: bool = False) -> None:
        """Replace the whole content, choosing exact or IVF by size (e.g. from `db.load_vectors`). With
        `in_place`, a float32 `vectors` array is normalised where it is instead of copied (a million
        911-d vectors are 3.6 GB; the caller must not need them afterwards)."""
        ids, x = self._checked(ids, vectors, copy=not in_place)
        index = self._build(ids, x)
        with self._lock:
            self._index, self._gpu, self._max_id = index, None, None

    def sync(self, db_ids: np.ndarray, fetch: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]) -> tuple[int, int]:
        """Make the index hold exactly `db_ids`: remove the others, and add the missing ones with the
        (ids, vectors) that `fetch(missing_ids)` returns. Returns (added, removed)."""
        present = self.ids()
        db_ids = np.asarray(db_ids, dtype=np.int64)
        removed = self.remove(np.setdiff1d(present, db_ids)) if len(present) else 0
        missing = np.setdiff1d(db_ids, present)
        if len(missing):
            self.add(*fetch(missing))
        return len(missing), removed

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[Hits]:
        """The k nearest segments of each query row (a 1-D query counts as one row); fewer when the
        index holds fewer vectors. With `allowed`, only those segment ids are candidates (a filter
        applied inside FAISS; on IVF every list is probed so that no allowed vector is missed)."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        q = self._normalised(np.atleast_2d(queries))
        with self._lock:
            if self.ntotal == 0:
                return [Hits(np.empty(0, np.float32), np.empty(0, np.int64)) for _ in q]
            if allowed is None:
                scores, ids = self._searcher(k).search(q, k)
            else:
                selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
                if isinstance(self._index, faiss.IndexIVF):
                    params = faiss.SearchParametersIVF(sel=selector, nprobe=self._index.nlist)
                else:
                    params = faiss.SearchParameters(sel=selector)
                scores, ids = self._index.search(q, k, params=params)
        return [Hits(s[i >= 0], i[i >= 0]) for s, i in zip(scores, ids, strict=True)]

    def save(self, manifest: Path) -> None:
        """Write the index to a new file, then replace the manifest (JSON: identity, count, file name)
        that names it. The manifest's `os.replace` is the commit point: a crash at any moment leaves the
        old pair or the new one, never an index with another index's manifest. One process saves a
        space at a time; within it, saves are serialised."""
        folder = manifest.parent
        folder.mkdir(parents=True, exist_ok=True)
        data = folder / f"{manifest.stem}.{uuid.uuid4().hex[:12]}.faiss"
        tmp = data.with_name(data.name + ".tmp")
        with self._save_lock:
            with self._lock:
                faiss.write_index(self._index, str(tmp))
                meta = {
                    "format": MANIFEST_FORMAT,
                    **asdict(self.identity),
                    "count": self.ntotal,
                    "kind": self.kind,
                    "generation": self.generation,
                }
            _fsync(tmp)
            os.replace(tmp, data)
            _write_atomic(manifest, json.dumps({**meta, "file": data.name}, indent=1))
            # Older generations, and temporaries left by a crash, are no longer named by the manifest.
            stale = re.compile(rf"^{re.escape(manifest.stem)}\.[0-9a-f]{{12}}\.faiss(\.tmp)?$")
            for path in folder.iterdir():
                if path != data and stale.match(path.name):
                    path.unlink(missing_ok=True)

    @classmethod
    def load(
        cls, manifest: Path, identity: IndexIdentity, *, exact_max: int = EXACT_MAX, nprobe: int | None = None
    ) -> VectorIndex:
        """Open a saved index of this identity. FileNotFoundError when none was saved; StaleIndexError
        when it belongs to another space, model or size, or its file is missing or damaged."""
        text = manifest.read_text()
        hint = f"run `soundsearch reindex` to rebuild the {identity.space!r} index from the database"
        try:
            meta = json.loads(text)
            saved = IndexIdentity(meta["space"], meta["model_name"], meta["model_version"], meta["dim"], meta["uid"])
            file = manifest.parent / meta["file"]
            count, fmt = meta["count"], meta["format"]
        except (ValueError, KeyError, TypeError) as err:
            raise StaleIndexError(f"{manifest} is not an index manifest ({err}); {hint}") from err
        if fmt != MANIFEST_FORMAT or saved != identity:
            raise StaleIndexError(f"{manifest} was built for {saved}, but the space is now {identity}; {hint}")
        try:
            index = faiss.read_index(str(file))
        except RuntimeError as err:
            raise StaleIndexError(f"cannot read {file} ({err}); {hint}") from err
        if index.d != identity.dim or index.ntotal != count:
            raise StaleIndexError(
                f"{file} holds {index.ntotal} vectors of dim {index.d}, its manifest says {count} of dim "
                f"{identity.dim}; {hint}"
            )
        loaded = cls(identity, exact_max=exact_max, nprobe=nprobe)
        if isinstance(index, faiss.IndexIVF):
            index.nprobe = loaded._nprobe(index.nlist)
        loaded._index = index
        loaded.generation = int(meta.get("generation", -1))
        return loaded

    def _build(self, ids: np.ndarray, x: np.ndarray) -> faiss.Index:
        """A new index of these (normalised) vectors: exact up to `exact_max`, IVF above."""
        n, dim = x.shape
        if n <= self.exact_max:
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        else:
            nlist = ivf_nlist(n)
            index = faiss.IndexIVFScalarQuantizer(
                faiss.IndexFlatIP(dim), dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
            )
            sample = np.random.default_rng(0).choice(n, size=min(n, TRAIN_PER_LIST * nlist), replace=False)
            index.train(x[np.sort(sample)])
            index.nprobe = self._nprobe(nlist)
        index.add_with_ids(x, ids)
        return index

    def _nprobe(self, nlist: int) -> int:
        return ivf_nprobe(nlist) if self.nprobe is None else min(self.nprobe, nlist)

    def _ids(self) -> np.ndarray:
        if isinstance(self._index, faiss.IndexIDMap2):
            return faiss.vector_to_array(self._index.id_map).astype(np.int64)
        lists = self._index.invlists
        sizes = [lists.list_size(i) for i in range(self._index.nlist)]
        parts = [faiss.rev_swig_ptr(lists.get_ids(i), size).copy() for i, size in enumerate(sizes) if size]
        return np.concatenate(parts) if parts else np.empty(0, np.int64)

    def _searcher(self, k: int) -> faiss.Index:
        """The GPU copy when there is a GPU and k fits, else the CPU index."""
        if k > GPU_MAX_K or not gpu_available():
            return self._index
        if self._gpu is None:
            self._gpu = faiss.index_cpu_to_gpu(_gpu_resources(), 0, self._index)
        return self._gpu

    def _checked(self, ids: np.ndarray, vectors: np.ndarray, copy: bool = True) -> tuple[np.ndarray, np.ndarray]:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        x = self._normalised(vectors, copy)
        if ids.ndim != 1 or len(ids) != len(x):
            raise ValueError(f"{ids.shape} ids for {len(x)} vectors")
        if len(np.unique(ids)) != len(ids) or (len(ids) and ids.min() < 0):
            raise ValueError("segment ids must be distinct and non-negative")
        return ids, x

    def _normalised(self, vectors: np.ndarray, copy: bool = True) -> np.ndarray:
        """Float32 C-contiguous unit rows (zero rows stay zero): a copy, or the array itself when allowed."""
        x = np.array(vectors, dtype=np.float32, order="C", ndmin=2, copy=True if copy else None)
        if x.ndim != 2 or x.shape[1] != self.identity.dim:
            raise ValueError(f"expected vectors of dim {self.identity.dim}, got shape {x.shape}")
        faiss.normalize_L2(x)
        return x


def _fsync(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _write_atomic(path: Path, text: str) -> None:
    """Write to a temporary file, flush it to disk, rename it over `path`, then flush the folder."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
