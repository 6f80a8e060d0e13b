"""Search latency with a million segment vectors, measured through the real database, index and engine.

    .venv/bin/python benchmarks/search_latency.py [--vectors 1000000] [--segments-per-sound 2] [--dim 384]
        [--queries 200] [--rounds 4] [--home DIR] [--keep] [--db URL] [--profile]

1. A synthetic catalogue is written straight into the real schema (SQLite in the data home, or `--db URL`
   for PostgreSQL). Bulk Core inserts (executemany, 20,000 rows a call, 100,000 sounds a transaction)
   replace the encoder, which would need days for a million real segments. Its build time and size are
   reported for reference only: they say nothing about ingest, which is bound by decoding and encoding.
2. `rebuild_space_index` builds the audio space's FAISS index from the stored vectors, as
   `soundsearch reindex` does. Its time is split into reading the vectors from the DB, the FAISS build
   (normalising, k-means training and adding) and saving. RSS growth, the saved file's size and the time
   `VectorIndex.load` needs to open it are reported too.
3. Latency, p50 and p95. First the raw FAISS search (one query row, k=80). Then the engine's per-search
   index freshness check. Then whole `SearchEngine.search` calls with k=10: "more like this" (an indexed
   sound's stored vectors, so no audio is decoded and no model runs), text queries, and both with a
   common and a rare tag + duration filter. The rare filter makes the engine grow its FAISS over-fetch
   round by round, and switch to the allowed-id path when even that finds too few sounds.
   Each case gets `--queries` queries after a few warm-ups. They run in `--rounds` rounds that interleave
   the cases, so background load on a shared machine hits all rows alike. The notes show how far the
   per-round medians spread. The recall@10 of the IVF index against exact brute-force search is measured
   on 100 queries.
4. Markdown tables go to stdout; the same numbers are written to benchmarks/results/search_latency.json.
   With `--profile`, cProfile output for each engine case goes to search_latency_profile.txt beside it.

Why the data look the way they do:

- Every vector lies near a random 32-dimensional subspace of the 384-d space: a Gaussian latent times a
  Gaussian basis, plus N(0, 0.3²) noise per coordinate. `tests/test_vector_index.py` builds its vectors
  the same way, with 16 dimensions. Real embeddings have a low intrinsic dimension, because sounds vary
  along far fewer directions than the network has outputs. Isotropic random vectors would have no near
  neighbours at all (every cosine ≈ 0). An approximate index cannot find structure that is not there,
  so their recall and the over-fetching they cause would describe no real library. The segments of one
  sound share its latent plus a smaller offset, as overlapping windows of one recording do.
  The vectors are not made non-negative like mn04's post-ReLU outputs: the index normalises them, and
  the search cost does not depend on their sign.
- Tags follow `catalog.write_sound`. Each sound gets 6 to 14 labels (10 on average; at most `TAG_TOP`),
  drawn without replacement from a Zipf law (p ∝ 1/rank) over the 527 labels. Hand-picked frequent
  classes (Speech, Music, Vehicle, ..., Dog) head the ranking, so that as in real libraries some tags
  sit on a large share of sounds and most on very few. Text queries and tag filters therefore meet both
  long and short index ranges. Scores are log-uniform in [`TAG_MIN_SCORE`, 1): about half reach the tag
  filter's 0.1. Each label's score sits on one segment, and the others get a random fraction of it
  (dropped below `TAG_MIN_SCORE`), so a sound's score is the maximum over its segments, as ingest stores it.
- Tags are independent of the vectors. A filter's cost then depends on its selectivity alone, which the
  notes give as the share of sounds that pass.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import io
import json
import math
import platform
import pstats
import re
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import psutil
import sqlalchemy
from sqlalchemy import Connection, Engine, Table, func, insert, select
from sqlalchemy.orm import Session

from soundsearch.config import Settings
from soundsearch.encoders.load import open_vocabulary
from soundsearch.encoders.store import ModelStore
from soundsearch.indexer import spaces
from soundsearch.indexer.catalog import TAG_MIN_SCORE, TAG_TOP
from soundsearch.indexer.db import (
    Embedding,
    EmbeddingSpace,
    Library,
    Segment,
    SegmentTag,
    Sound,
    SoundTag,
    create_schema,
    load_vectors,
    make_engine,
    pack_vector,
    utcnow,
)
from soundsearch.indexer.spaces import AUDIO_SPACE, get_space, index_identity, rebuild_space_index
from soundsearch.indexer.vector_index import VectorIndex, ivf_nlist, ivf_nprobe, manifest_path
from soundsearch.search.engine import SearchEngine, SearchRequest, SearchResponse
from soundsearch.search.filters import Filters, plan_filters

HERE = Path(__file__).resolve().parent
SHARED_MODELS = HERE.parents[1] / "shared" / "models"
RESULTS = HERE / "results" / "search_latency.json"
PROFILE = HERE / "results" / "search_latency_profile.txt"

LIBRARY = "synthetic-benchmark"
DIM, LATENT_DIM = 384, 32  # mn04's embedding size; the subspace the vectors lie near
NOISE = 0.3  # per coordinate, against a signal of variance LATENT_DIM per coordinate
SEGMENT_SPREAD = 0.5  # a segment's latent offset from its sound's
WINDOW_S, HOP_S = 10.0, 5.0  # the default segmenting: defines each sound's duration and segment times
TAGS_PER_SOUND = (6, 14)
HEAD_LABELS = (
    "Speech",
    "Music",
    "Vehicle",
    "Musical instrument",
    "Inside, small room",
    "Animal",
    "Guitar",
    "Singing",
    "Car",
    "Water",
    "Dog",
    "Bird",
    "Engine",
    "Wind",
    "Rain",
    "Door",
    "Walk, footsteps",
    "Glass",
    "Explosion",
    "Silence",
)
TEXT_QUERIES = (
    "dog",
    "dog barking",
    "animal",
    "glass breaking",
    "car engine",
    "explosion",
    "rain",
    "speech",
    "music",
    "footsteps",
    "door",
    "bird",
)
COMMON_TAG = "Dog"
RARE_RANK = 200  # the rare filter's tag: the first leaf class from this Zipf rank on
SOUND_BATCH = 10_000  # sounds generated at a time
INSERT_ROWS = 20_000  # rows per executemany
TRANSACTION_SOUNDS = 100_000  # sounds per transaction: a few commits, a bounded WAL
SQLITE_BUILD_CACHE_KIB = 1 << 20  # the build connection's page cache: tag indexes get inserts in random order
FAISS_K = 80  # the raw index probe; the engine itself fetches at least `ranking.MIN_FETCH` (200)
#: The catalogue's tables in foreign-key order.
TABLES = (Sound.__table__, Segment.__table__, Embedding.__table__, SoundTag.__table__, SegmentTag.__table__)
WARMUP = 5
RECALL_QUERIES = 100
PROFILE_QUERIES = 30


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vectors", type=int, default=1_000_000, help="segment vectors in the catalogue")
    parser.add_argument("--segments-per-sound", type=int, default=2)
    parser.add_argument("--dim", type=int, default=DIM, help="vector size (mn04 embeddings: 384)")
    parser.add_argument("--queries", type=int, default=200, help="timed queries per measurement")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds the queries are split into")
    parser.add_argument(
        "--home",
        type=Path,
        help="data home (default: a temporary folder). A given home is "
        "kept, and its catalogue is reused by the next run with the same sizes",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary data home")
    parser.add_argument("--db", help="database URL, e.g. postgresql://user@host/db (default: SQLite in the home)")
    parser.add_argument("--models", type=Path, default=SHARED_MODELS, help="folder to import label files from")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", action="store_true", help=f"cProfile the engine cases into {PROFILE.name}")
    args = parser.parse_args()
    if args.segments_per_sound < 1 or args.vectors < args.segments_per_sound or args.queries < args.rounds:
        parser.error("need vectors >= segments-per-sound >= 1 and queries >= rounds")
    return args


# -- the synthetic catalogue -----------------------------------------------------------------------------


def duration_range(segments: int) -> tuple[float, float]:
    """Durations for which the default 10 s window / 5 s hop gives exactly `segments` segments."""
    if segments == 1:
        return 1.0, WINDOW_S
    low = WINDOW_S + HOP_S * (segments - 2)
    return low, low + HOP_S


def label_order(names: list[str], seed: int) -> np.ndarray:
    """Label indices by Zipf rank: the hand-picked frequent classes first, then the rest in a fixed
    random order (the AudioSet index order would put whole ontology branches together)."""
    head = [names.index(name) for name in HEAD_LABELS]
    rest = np.setdiff1d(np.arange(len(names)), head)
    return np.concatenate([head, np.random.default_rng(seed + 1).permutation(rest)]).astype(np.int64)


class Synthesizer:
    """The rows of a batch of sounds (sounds, segments, vectors, sound and segment tags), generated with
    numpy and handed to executemany as dicts. Ids are assigned here: the database starts empty."""

    def __init__(self, seed: int, segments: int, dim: int, order: np.ndarray, library_id: int, space_id: int) -> None:
        if TAGS_PER_SOUND[1] > TAG_TOP:
            raise ValueError(f"ingest stores at most {TAG_TOP} tags per sound")
        self.rng = np.random.default_rng(seed)
        self.basis = self.rng.standard_normal((LATENT_DIM, dim))
        self.segments = segments
        self.order = order
        self.log_p = -np.log(np.arange(1, len(order) + 1))  # Zipf with exponent 1, by rank
        self.library_id, self.space_id = library_id, space_id
        self.durations = duration_range(segments)
        self.stamp = utcnow()

    def vectors(self, count: int) -> np.ndarray:
        """(count * segments, dim): each sound's latent, each segment's offset from it, then the noise."""
        sound = self.rng.standard_normal((count, 1, LATENT_DIM))
        latent = sound + SEGMENT_SPREAD * self.rng.standard_normal((count, self.segments, LATENT_DIM))
        x = latent.reshape(-1, LATENT_DIM) @ self.basis
        return (x + NOISE * self.rng.standard_normal(x.shape)).astype(np.float32)

    def tags(self, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Sound tags as (labels, scores, present), each (count, most); segment tags as (scores, present),
        each (count, segments, most). Labels are drawn without replacement in proportion to their Zipf
        probability: the top `most` of log p + Gumbel noise (the Gumbel top-k trick)."""
        least, most = TAGS_PER_SOUND
        keys = self.log_p + self.rng.gumbel(size=(count, len(self.order)))
        labels = self.order[np.argpartition(-keys, most, axis=1)[:, :most]]
        scores = np.exp(self.rng.uniform(np.log(TAG_MIN_SCORE), 0.0, size=(count, most)))
        present = np.arange(most) < self.rng.integers(least, most + 1, size=(count, 1))
        owner = self.rng.integers(self.segments, size=(count, 1, most))  # the segment holding the max
        fraction = np.where(
            np.arange(self.segments)[None, :, None] == owner, 1.0, self.rng.uniform(size=(count, self.segments, most))
        )
        seg_scores = scores[:, None, :] * fraction
        seg_present = present[:, None, :] & (seg_scores >= TAG_MIN_SCORE)
        return labels, scores, present, seg_scores, seg_present

    def batch(self, first_id: int, count: int) -> dict[Table, list[dict[str, Any]]]:
        """Rows for sounds `first_id` .. `first_id + count - 1`, by table, in foreign-key order."""
        s = self.segments
        ids = np.arange(first_id, first_id + count)
        seg_ids = (ids[:, None] - 1) * s + np.arange(s) + 1
        durations = self.rng.uniform(*self.durations, size=count)
        rates = self.rng.choice([44_100, 48_000], size=count)
        channels = self.rng.choice([1, 2], size=count)
        starts = np.broadcast_to(HOP_S * np.arange(s), (count, s))
        ends = np.minimum(starts + WINDOW_S, durations[:, None])
        labels, scores, present, seg_scores, seg_present = self.tags(count)
        vectors = self.vectors(count)

        sounds = [
            {
                "id": i,
                "library_id": self.library_id,
                "rel_path": f"synthetic/{i // 1000:04d}/sound_{i:07d}.wav",
                "content_hash": f"{i:064x}",
                "size": int(d * r * 2 * c),
                "mtime": 1.7e9 + i,
                "duration_s": d,
                "sample_rate": r,
                "channels": c,
                "format": "WAV",
                "title": None,
                "description": None,
                "indexed_at": self.stamp,
            }
            for i, d, r, c in zip(ids.tolist(), durations.tolist(), rates.tolist(), channels.tolist(), strict=True)
        ]
        seg_rows = [
            {"id": g, "sound_id": i, "position": p, "start_s": a, "end_s": b}
            for i, gs, st, en in zip(ids.tolist(), seg_ids.tolist(), starts.tolist(), ends.tolist(), strict=True)
            for p, (g, a, b) in enumerate(zip(gs, st, en, strict=True))
        ]
        embeddings = [
            {"space_id": self.space_id, "segment_id": g, "vector": pack_vector(v)}
            for g, v in zip(seg_ids.ravel().tolist(), vectors, strict=True)
        ]
        r, t = np.nonzero(present)
        sound_tags = [
            {"sound_id": i, "label": lb, "score": sc}
            for i, lb, sc in zip(ids[r].tolist(), labels[r, t].tolist(), scores[r, t].tolist(), strict=True)
        ]
        r, p, t = np.nonzero(seg_present)
        segment_tags = [
            {"segment_id": g, "label": lb, "score": sc}
            for g, lb, sc in zip(
                seg_ids[r, p].tolist(), labels[r, t].tolist(), seg_scores[r, p, t].tolist(), strict=True
            )
        ]
        return dict(zip(TABLES, (sounds, seg_rows, embeddings, sound_tags, segment_tags), strict=True))


def insert_rows(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """executemany in slices: one round trip per slice (no RETURNING, so SQLite gets a plain executemany)."""
    for start in range(0, len(rows), INSERT_ROWS):
        conn.execute(insert(table), rows[start : start + INSERT_ROWS])


def catalogue_state(engine: Engine, sounds: int, segments: int, dim: int) -> bool:
    """True when the DB already holds this benchmark's catalogue at this size (reuse it); False when it
    is empty; an exit when it holds anything else, which a benchmark must not write into."""
    with engine.connect() as conn:
        have = conn.scalar(select(func.count()).select_from(Sound))
        if not have:
            return False
        ours = conn.scalar(select(func.count()).select_from(Library).where(Library.name == LIBRARY))
        segs = conn.scalar(select(func.count()).select_from(Segment))
        dims = conn.scalar(select(EmbeddingSpace.dim).where(EmbeddingSpace.name == AUDIO_SPACE))
    if ours and have == sounds and segs == sounds * segments and dims == dim:
        return True
    sys.exit(
        f"the database holds {have} sounds but not this benchmark's catalogue at this size: "
        "give an empty database or a new --home"
    )


def build_catalogue(
    engine: Engine, sounds: int, segments: int, dim: int, names: list[str], seed: int
) -> dict[str, Any]:
    """Write the whole synthetic catalogue; returns row counts and the build time."""
    t0 = time.perf_counter()
    counts = dict.fromkeys((t.name for t in TABLES), 0)
    with engine.connect() as conn:
        sqlite = engine.dialect.name == "sqlite"
        if sqlite:  # this connection only (its engine is disposed after the build); a crash loses a benchmark
            conn.exec_driver_sql("PRAGMA synchronous=OFF")
            conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_BUILD_CACHE_KIB}")
            conn.commit()  # end SQLAlchemy's autobegun transaction: the build opens its own
        with conn.begin():
            library_id = conn.execute(insert(Library).values(name=LIBRARY, root="synthetic")).inserted_primary_key[0]
            space_id = conn.execute(
                insert(EmbeddingSpace).values(name=AUDIO_SPACE, model_name="mn04", model_version="synthetic", dim=dim)
            ).inserted_primary_key[0]
        synth = Synthesizer(seed, segments, dim, label_order(names, seed), library_id, space_id)
        for first in range(1, sounds + 1, TRANSACTION_SOUNDS):
            with conn.begin():
                for start in range(first, min(first + TRANSACTION_SOUNDS, sounds + 1), SOUND_BATCH):
                    for table, rows in synth.batch(start, min(SOUND_BATCH, sounds + 1 - start)).items():
                        insert_rows(conn, table, rows)
                        counts[table.name] += len(rows)
            done = min(first + TRANSACTION_SOUNDS - 1, sounds)
            print(f"  {done:,} / {sounds:,} sounds written ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
        if sqlite:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        else:  # explicit ids do not advance PostgreSQL's sequences; later inserts would collide
            with conn.begin():
                for table in ("sounds", "segments"):
                    conn.exec_driver_sql(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"
                    )
    return {"seconds": round(time.perf_counter() - t0, 1), "rows": counts}


def database_bytes(engine: Engine) -> int:
    """The SQLite file (with its WAL) or the PostgreSQL database, in bytes."""
    if engine.dialect.name == "sqlite":
        path = Path(engine.url.database or "")
        return sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar_one())


def prepare_models(home: Path, source: Path) -> None:
    """The text search and the result tags need the label files in the home's model store."""
    store = ModelStore(home / "models")
    if not (store.root / "class_labels_indices.csv").is_file():
        store.import_dir(source)


# -- index build -----------------------------------------------------------------------------------------


class PeakRss:
    """This process's RSS sampled every 10 ms in a thread: a FAISS build's peak is transient."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.before = self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@contextlib.contextmanager
def timed(owner: Any, name: str, spent: dict[str, float]) -> Iterator[None]:
    """Replace `owner.name` with a wrapper that adds its wall time to `spent[name]`, so that one call of
    `rebuild_space_index` can be split into its parts without copying its code."""
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - t

    setattr(owner, name, wrapper)
    try:
        yield
    finally:
        setattr(owner, name, original)


def measure_rebuild(settings: Settings, engine: Engine) -> dict[str, Any]:
    """`rebuild_space_index` as `soundsearch reindex` runs it, timed by part, with its memory and file."""
    spent: dict[str, float] = {}
    with Session(engine) as session:
        space = get_space(session, AUDIO_SPACE)
        t0 = time.perf_counter()
        with (
            PeakRss() as rss,
            timed(spaces, "load_vectors", spent),
            timed(VectorIndex, "rebuild", spent),
            timed(VectorIndex, "save", spent),
        ):
            built = rebuild_space_index(settings.home, session, space)
        total = time.perf_counter() - t0
        after = psutil.Process().memory_info().rss
        identity = index_identity(space)
    manifest = json.loads(built.manifest.read_text())
    ivf = built.index.kind == "ivf"
    info = {
        "kind": built.index.kind,
        "ntotal": built.index.ntotal,
        "nlist": ivf_nlist(built.index.ntotal) if ivf else None,
        "nprobe": ivf_nprobe(ivf_nlist(built.index.ntotal)) if ivf else None,
        "load_vectors_s": round(spent["load_vectors"], 2),
        "faiss_build_s": round(spent["rebuild"], 2),
        "save_s": round(spent["save"], 2),
        "total_s": round(total, 2),
        "rss_before_mib": round(rss.before / 2**20),
        "rss_peak_growth_mib": round((rss.peak - rss.before) / 2**20),
        "rss_retained_growth_mib": round((after - rss.before) / 2**20),
        "file_mib": round((built.manifest.parent / manifest["file"]).stat().st_size / 2**20, 1),
    }
    del built
    loads = []
    for _ in range(3):
        t = time.perf_counter()
        loaded = VectorIndex.load(manifest_path(settings.home, identity), identity)
        loads.append(time.perf_counter() - t)
        del loaded
    info["load_s"] = round(float(np.median(loads)), 2)
    return info


# -- latency ---------------------------------------------------------------------------------------------


class FaissProbe:
    """Wraps one VectorIndex's `search` to record, per engine query, how many FAISS searches ran and
    whether the allowed-id path was taken: what a filter cost is made of."""

    def __init__(self, index: VectorIndex) -> None:
        self.index = index
        self.calls: list[tuple[int, bool]] = []  # (k, allowed given) of the current query
        original = index.search

        def search(queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list:
            self.calls.append((k, allowed is not None))
            return original(queries, k, allowed)

        index.search = search  # type: ignore[method-assign]

    def close(self) -> None:
        del self.index.search  # back to the class's method

    def take(self) -> list[tuple[int, bool]]:
        calls, self.calls = self.calls, []
        return calls


@dataclass
class Case:
    """One latency row: `run(i)` performs the i-th query of the case."""

    name: str
    run: Callable[[int], object]
    note: str = ""
    samples_ms: list[float] = field(default_factory=list)
    round_p50s: list[float] = field(default_factory=list)
    engine_ms: list[dict[str, float]] = field(default_factory=list)
    faiss_calls: list[list[tuple[int, bool]]] = field(default_factory=list)
    error: str | None = None  # what the case raised: reported in its row instead of a latency
    key: Callable[[int], str] | None = None  # names the i-th query, for a per-query breakdown
    keys: list[str] = field(default_factory=list)


def run_cases(cases: list[Case], queries: int, rounds: int, probe: FaissProbe) -> None:
    """Warm every case up, then time `queries` queries each, in interleaved rounds. A case that raises
    during its warm-up is reported as failing, and the others still run."""
    for case in cases:
        try:
            for i in range(WARMUP):
                case.run(queries + i)
        except Exception as exc:
            message = re.sub(r"<[^>]* at 0x[0-9a-f]+>", "<...>", str(exc).splitlines()[0])
            case.error = f"{type(exc).__name__}: {message}"
            print(f"  {case.name} fails: {case.error}", file=sys.stderr)
    per_round = math.ceil(queries / rounds)
    for r in range(rounds):
        for case in (c for c in cases if c.error is None):
            times = []
            for i in range(r * per_round, min(queries, (r + 1) * per_round)):
                probe.take()
                t = time.perf_counter()
                out = case.run(i)
                times.append((time.perf_counter() - t) * 1000)
                if case.key is not None:
                    case.keys.append(case.key(i))
                if isinstance(out, SearchResponse):
                    case.engine_ms.append(out.timings_ms)
                    case.faiss_calls.append(probe.take())
            case.samples_ms += times
            case.round_p50s.append(float(np.median(times)))
        print(f"  round {r + 1} / {rounds} done", file=sys.stderr)


def case_row(case: Case) -> dict[str, Any]:
    """The row of the table, with notes on what the time is made of (the engine's own timings, the FAISS
    searches a query needed, the slowest text queries) and how stable it was across rounds."""
    if case.error is not None:
        return {"measurement": case.name, "p50_ms": None, "p95_ms": None, "notes": f"fails: {case.error}"}
    p50, p95 = np.percentile(case.samples_ms, [50, 95])
    row: dict[str, Any] = {"measurement": case.name, "p50_ms": round(float(p50), 2), "p95_ms": round(float(p95), 2)}
    notes = [case.note] if case.note else []
    if case.engine_ms:
        parts = ("audio_search", "text_search")
        own = {p: np.median([t[p] for t in case.engine_ms if p in t]) for p in parts if p in case.engine_ms[0]}
        notes.append("; ".join(f"{p} p50 {v:.1f} ms" for p, v in own.items()))
    if any(case.faiss_calls):
        searches = [len(c) for c in case.faiss_calls]
        allowed = np.mean([any(a for _, a in c) for c in case.faiss_calls])
        typical = max(set(map(tuple, case.faiss_calls)), key=case.faiss_calls.count)
        sequence = " → ".join(f"allowed-ids k={k}" if a else f"k={k}" for k, a in typical)
        notes.append(
            f"FAISS searches/query {min(searches)}–{max(searches)}, most often {sequence}; "
            f"allowed-id path in {allowed:.0%} of queries"
        )
    if case.keys:
        by_key: dict[str, list[float]] = {}
        for key, ms in zip(case.keys, case.samples_ms, strict=True):
            by_key.setdefault(key, []).append(ms)
        per_query = row["per_query_p50_ms"] = {k: round(float(np.median(v)), 2) for k, v in by_key.items()}
        slow = sorted(per_query, key=lambda k: -per_query[k])[:2]
        notes.append("slowest: " + ", ".join(f"{k!r} p50 {per_query[k]:.0f} ms" for k in slow))
    lo, hi = min(case.round_p50s), max(case.round_p50s)
    notes.append(f"round p50s {lo:.1f}–{hi:.1f} ms")
    return {**row, "notes": "; ".join(n for n in notes if n)}


def pick_rare_tag(engine: SearchEngine, order: np.ndarray) -> str:
    """A label from Zipf rank `RARE_RANK` on that the tag filter resolves to itself alone (a leaf), so
    the filter is as rare as its rank says."""
    names = engine.vocab.names
    for label in order[RARE_RANK:].tolist():
        if engine.parser.resolve_label(names[label]) == [label]:
            return names[label]
    raise RuntimeError("no leaf label found")


def share_passing(engine: SearchEngine, filters: Filters) -> float:
    """The share of sounds that pass the filters (their selectivity)."""
    with engine.catalog.sessions() as session:
        plan = plan_filters(session, filters, engine.parser.resolve_label)
        passing = session.scalar(select(func.count()).select_from(Sound).where(*plan.conditions))
        total = session.scalar(select(func.count()).select_from(Sound))
    return passing / total


def normalise_rows(x: np.ndarray, chunk: int = 100_000) -> np.ndarray:
    """Unit rows, in place and a chunk at a time (a million vectors are 1.5 GB: no second copy)."""
    for start in range(0, len(x), chunk):
        block = x[start : start + chunk]
        block /= np.maximum(np.linalg.norm(block, axis=1, keepdims=True), 1e-12)
    return x


def exact_top_k(vectors: np.ndarray, queries: np.ndarray, k: int, chunk: int = 100_000) -> np.ndarray:
    """Row positions of each query's k best inner products by brute force, a chunk of rows at a time,
    keeping the running best k (the full query x vector score matrix would not fit)."""
    best_s = np.full((len(queries), k), -np.inf, np.float32)
    best_i = np.zeros((len(queries), k), np.int64)
    for start in range(0, len(vectors), chunk):
        block = vectors[start : start + chunk]
        s = np.concatenate([best_s, queries @ block.T], axis=1)
        positions = np.broadcast_to(np.arange(start, start + len(block)), (len(queries), len(block)))
        i = np.concatenate([best_i, positions], axis=1)
        top = np.argpartition(-s, k, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(s, top, 1), np.take_along_axis(i, top, 1)
    return best_i


def measure_recall(engine: SearchEngine, index: VectorIndex, rng: np.random.Generator) -> dict[str, float]:
    """recall@10 of the index against exact search over the stored vectors, for stored segments as queries
    ("more like this") and for new vectors near stored ones (an uploaded example; as in the unit test)."""
    with engine.catalog.sessions() as session:
        ids, vectors = load_vectors(session, index_space(engine))
    stored = vectors[rng.choice(len(ids), RECALL_QUERIES, replace=False)]
    near = stored + 0.1 * vectors[:100_000].std() * rng.standard_normal(stored.shape).astype(np.float32)
    normalise_rows(vectors)
    out = {}
    for name, q in (("stored segment", stored), ("new vector near a stored one", near)):
        truth = ids[exact_top_k(vectors, normalise_rows(q.copy()), 10)]
        found = [h.ids for h in index.search(q, 10)]
        overlap = [len(np.intersect1d(t, f)) / 10 for t, f in zip(truth, found, strict=True)]
        out[name] = round(float(np.mean(overlap)), 3)
    return out


def index_space(engine: SearchEngine) -> EmbeddingSpace:
    return engine.space_index().space


def latency_cases(engine: SearchEngine, order: np.ndarray, segments: int, queries: int, seed: int) -> list[Case]:
    """The measured cases, with their queries drawn up front (random sounds, rotating texts)."""
    rng = np.random.default_rng(seed + 2)
    with engine.catalog.sessions() as session:
        sound_ids = np.fromiter(session.scalars(select(Sound.id)), np.int64)
        seg_ids = np.sort(rng.choice(np.fromiter(session.scalars(select(Segment.id)), np.int64), queries + WARMUP))
        _, seg_vectors = load_vectors(session, index_space(engine), seg_ids)
    like = rng.choice(sound_ids, queries + WARMUP).tolist()
    lo, hi = duration_range(segments)
    rare = pick_rare_tag(engine, order)
    common_f = Filters(tags=(COMMON_TAG,), min_duration=round(lo + 0.2 * (hi - lo), 1))
    rare_f = Filters(tags=(rare,), min_duration=round(lo + 0.8 * (hi - lo), 1))
    duration_f = Filters(min_duration=rare_f.min_duration)
    index = engine.space_index().index

    def text(i: int) -> str:
        return TEXT_QUERIES[i % len(TEXT_QUERIES)]

    def describe(f: Filters) -> str:
        return ", ".join([f"tag {t!r}" for t in f.tags] + [f"≥ {f.min_duration:g} s"])

    def keeps(f: Filters) -> str:
        return f"filter keeps {share_passing(engine, f):.2%} of sounds"

    def like_case(name: str, filters: Filters | None = None, note: str = "") -> Case:
        request = functools.partial(SearchRequest, k=10, filters=filters or Filters())
        return Case(name, lambda i: engine.search(request(like=like[i % len(like)])), note)

    def text_case(name: str, filters: Filters | None = None, note: str = "") -> Case:
        request = functools.partial(SearchRequest, k=10, filters=filters or Filters())
        return Case(name, lambda i: engine.search(request(text=text(i))), note, key=text)

    return [
        Case(
            f"FAISS `VectorIndex.search`, 1 row, k={FAISS_K}",
            lambda i: index.search(seg_vectors[i % len(seg_vectors)], FAISS_K),
        ),
        Case("`SearchEngine.space_index()` freshness check", lambda i: engine.space_index(), "run by every search"),
        like_case("more like this (`like=`), k=10"),
        text_case("text, k=10", note=f"{len(TEXT_QUERIES)} queries in turn"),
        like_case(f"more like this + {describe(common_f)}", common_f, keeps(common_f)),
        like_case(f"more like this + {describe(rare_f)}", rare_f, keeps(rare_f)),
        text_case(f"text + {describe(common_f)}", common_f, keeps(common_f)),
        text_case(f"text + {describe(rare_f)}", rare_f, keeps(rare_f)),
        text_case(f"text + {describe(duration_f)}", duration_f, keeps(duration_f)),
    ]


def profile_cases(cases: list[Case], path: Path) -> None:
    """cProfile each engine case over a few queries; the 25 most expensive functions by cumulative time."""
    out = io.StringIO()
    for case in (c for c in cases[2:] if c.error is None):
        profiler = cProfile.Profile()
        profiler.enable()
        for i in range(PROFILE_QUERIES):
            case.run(i)
        profiler.disable()
        out.write(f"### {case.name} ({PROFILE_QUERIES} queries)\n")
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
    path.write_text(out.getvalue())


# -- report ----------------------------------------------------------------------------------------------


def markdown_table(header: tuple[str, ...], rows: list[tuple[object, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def _or_dash(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


def machine() -> dict[str, Any]:
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": psutil.cpu_count(),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "load_avg_at_start": [round(x, 2) for x in psutil.getloadavg()],
        "python": platform.python_version(),
        "faiss": faiss.__version__,
        "numpy": np.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "sqlite": sqlite3.sqlite_version,
        "faiss_threads": faiss.omp_get_max_threads(),
    }


def summary_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    b, x = report["build"], report["index"]
    rows = b["rows"]
    return [
        (
            "catalogue",
            f"{rows['sounds']:,} sounds, {rows['segments']:,} segments/vectors, "
            f"{rows['sound_tags']:,} sound tags, {rows['segment_tags']:,} segment tags",
        ),
        ("DB build (bulk inserts; not ingest)", f"{b['seconds']} s" if b["seconds"] is not None else "reused"),
        ("DB size", f"{report['db_mib']:,} MiB ({report['db_backend']})"),
        ("index", f"{x['kind']}, nlist {x['nlist']}, nprobe {x['nprobe']}" if x["nlist"] else x["kind"]),
        ("rebuild_space_index: load vectors from DB", f"{x['load_vectors_s']} s"),
        ("rebuild_space_index: FAISS build (normalise, train, add)", f"{x['faiss_build_s']} s"),
        ("rebuild_space_index: save", f"{x['save_s']} s"),
        ("rebuild_space_index: total", f"{x['total_s']} s"),
        (
            "RSS growth during rebuild: peak / retained",
            f"{x['rss_peak_growth_mib']:,} / {x['rss_retained_growth_mib']:,} MiB",
        ),
        ("index file", f"{x['file_mib']:,} MiB"),
        ("VectorIndex.load (file in page cache, median of 3)", f"{x['load_s']} s"),
        (
            "first search of a fresh engine (opens the index, reads the vocabulary)",
            f"{report['first_search_ms']:.0f} ms",
        ),
    ] + [(f"recall@10 vs exact, {k} ({RECALL_QUERIES} queries)", str(v)) for k, v in report["recall_at_10"].items()]


def main() -> None:
    args = parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="soundsearch-latency-"))
    try:
        run(args, home)
    finally:
        if args.home is None and not args.keep:
            shutil.rmtree(home, ignore_errors=True)
        elif args.home is None:
            print(f"kept the data home {home}", file=sys.stderr)


def run(args: argparse.Namespace, home: Path) -> None:
    """Build (or reuse) the catalogue, rebuild the index, time the searches, then report. The catalogue is
    built on its own engine, then closed, so that nothing of the build (pragmas, page cache) is measured."""
    settings = Settings(home=home, db=args.db)
    prepare_models(home, args.models)
    names = open_vocabulary(settings).names
    order = label_order(names, args.seed)
    sounds = args.vectors // args.segments_per_sound
    report: dict[str, Any] = {
        "command": " ".join(["benchmarks/search_latency.py", *sys.argv[1:]]),
        "machine": machine(),
        "parameters": {
            k: v
            for k, v in vars(args).items()
            if k in ("vectors", "segments_per_sound", "dim", "queries", "rounds", "seed")
        },
    }

    engine = make_engine(args.db, home)
    create_schema(engine)
    report["db_backend"] = engine.dialect.name
    if catalogue_state(engine, sounds, args.segments_per_sound, args.dim):
        print("reusing the catalogue already in the database", file=sys.stderr)
        with engine.connect() as conn:
            rows = {t.name: conn.scalar(select(func.count()).select_from(t)) for t in TABLES}
        report["build"] = {"seconds": None, "rows": rows}
    else:
        print(f"building {sounds:,} sounds x {args.segments_per_sound} segments", file=sys.stderr)
        report["build"] = build_catalogue(engine, sounds, args.segments_per_sound, args.dim, names, args.seed)
    report["db_mib"] = round(database_bytes(engine) / 2**20)
    engine.dispose()  # closes the build connection: its pragmas and page cache must not serve the rebuild

    print("rebuilding the FAISS index", file=sys.stderr)
    engine = make_engine(args.db, home)
    report["index"] = measure_rebuild(settings, engine)
    engine.dispose()

    search = SearchEngine(settings)
    try:
        with search.catalog.sessions() as session:
            first = session.scalar(select(Sound.id).limit(1))
        t = time.perf_counter()
        search.search(SearchRequest(like=first, k=10))
        report["first_search_ms"] = (time.perf_counter() - t) * 1000
        cases = latency_cases(search, order, args.segments_per_sound, args.queries, args.seed)
        probe = FaissProbe(search.space_index().index)
        print("timing searches", file=sys.stderr)
        run_cases(cases, args.queries, args.rounds, probe)
        report["latency"] = [case_row(c) for c in cases]
        if args.profile:
            profile_cases(cases, PROFILE)
        probe.close()
        print("measuring recall", file=sys.stderr)
        report["recall_at_10"] = measure_recall(search, search.space_index().index, np.random.default_rng(args.seed))
    finally:
        search.close()

    print(markdown_table(("quantity", "value"), summary_rows(report)))
    print()
    print(
        markdown_table(
            ("measurement", "p50 ms", "p95 ms", "notes"),
            [(r["measurement"], _or_dash(r["p50_ms"]), _or_dash(r["p95_ms"]), r["notes"]) for r in report["latency"]],
        )
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    print(f"\nwritten to {RESULTS.relative_to(HERE.parent)}", file=sys.stderr)


if __name__ == "__main__":
    main()
