"""One search entry point for the CLI and the API: understand the query, rank, fuse, filter, describe.

A request may hold an audio example (a file, samples, or an indexed sound's stored vectors: "more like
this" without re-encoding), a text, or both. Each kind ranks sounds on its own (`ranking`); with more
than one, the rankings are fused by reciprocal rank (`fusion`). Results carry the absolute path, the
best segment, the top tags, and each kind's own score.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import select

from ..audio import load_audio
from ..config import Settings
from ..encoders.audioset import AudioSetVocabulary
from ..encoders.encoder import Encoder
from ..encoders.example_vector import ExampleVectors
from ..encoders.load import open_encoder, open_vocabulary
from ..indexer.db import Library, Segment, Sound, SoundTag
from ..indexer.runner import Catalog
from ..indexer.spaces import AUDIO_SPACE, SpaceIndex, get_space, matches_db, open_space_index, segment_vectors
from .filters import Filters, plan_filters
from .fusion import reciprocal_rank_fusion
from .ranking import SoundHit, rank_by_text, rank_by_vectors
from .text_query import TextQuery, TextQueryParser

MAX_K = 500
#: Tags shown per result.
RESULT_TAGS = 5
#: Longer query recordings are cut to this (a query is an example, not a library).
MAX_QUERY_S = 60.0


class QueryError(ValueError):
    """A request that cannot be answered as asked (nothing to search with, nothing indexed, bad k)."""


@dataclass(frozen=True)
class SearchRequest:
    text: str | None = None
    audio: Path | None = None
    samples: tuple[np.ndarray, int] | None = None  # (mono float32, sample rate), e.g. an upload
    like: int | None = None  # an indexed sound's id: search with its stored vectors
    k: int = 10
    offset: int = 0
    filters: Filters = field(default_factory=Filters)
    weights: dict[str, float] | None = None  # fusion weights by kind ("audio", "text"); default equal


@dataclass
class TagScore:
    label: str
    score: float


@dataclass
class SearchResult:
    rank: int
    sound_id: int
    library: str
    rel_path: str
    path: str  # absolute
    score: float
    start: float  # best segment, seconds
    end: float
    duration: float
    tags: list[TagScore]
    scores: dict[str, float]  # each query kind's own score (cosine similarity, tag score)


@dataclass
class SearchResponse:
    results: list[SearchResult]
    has_more: bool
    kinds: list[str]
    text: TextQuery | None = None
    filters: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)


class SearchEngine:
    """Holds what searches reuse: the catalogue, the vocabulary, the query encoder and the index."""

    def __init__(self, settings: Settings, catalog: Catalog | None = None) -> None:
        self.settings = settings
        self.catalog = catalog or Catalog.open(settings)
        self._index: SpaceIndex | None = None

    def close(self) -> None:
        self.catalog.close()

    @functools.cached_property
    def vocab(self) -> AudioSetVocabulary:
        return open_vocabulary(self.settings)

    @functools.cached_property
    def parser(self) -> TextQueryParser:
        return TextQueryParser(self.vocab)

    @functools.cached_property
    def encoder(self) -> Encoder:
        """The model whose vectors fill the audio space (queries must be encoded the same way)."""
        model = self.catalog.space_model(AUDIO_SPACE)
        if model is None:
            raise QueryError("nothing is indexed yet: run `soundsearch index FOLDER` first")
        return open_encoder(self.settings, model)

    @functools.cached_property
    def example_vectors(self) -> ExampleVectors:
        """Query vectors made exactly like the library's (same model, same blend of tags and embedding)."""
        vectors = ExampleVectors(self.vocab, self.settings.example_tag_weight)
        with self.catalog.sessions() as session:
            space = get_space(session, AUDIO_SPACE)
        if space is not None and not space.model_version.endswith(vectors.recipe):
            raise QueryError(
                f"the index was built with other example-vector settings ({space.model_version}); "
                "run `soundsearch reindex` to rebuild it with the current ones"
            )
        return vectors

    def space_index(self) -> SpaceIndex:
        """The audio space's index, re-checked against the DB on every call (cheap when unchanged), so a
        long-running service sees what `index` added meanwhile."""
        with self.catalog.sessions() as session:
            space = get_space(session, AUDIO_SPACE)
            if space is None:
                raise QueryError("nothing is indexed yet: run `soundsearch index FOLDER` first")
            current = self._index
            if current is None or current.space.uid != space.uid or not matches_db(session, space, current.index):
                self._index = open_space_index(self.settings.home, session, space, persist=False)
            return self._index

    def search(self, request: SearchRequest) -> SearchResponse:
        if not 1 <= request.k <= MAX_K:
            raise QueryError(f"k must be between 1 and {MAX_K}, got {request.k}")
        if request.offset < 0:
            raise QueryError(f"offset must not be negative, got {request.offset}")
        timings: dict[str, float] = {}
        notes: list[str] = []
        need = request.offset + request.k + 1  # one more than the page: is there a next page?
        rankings: dict[str, list[SoundHit]] = {}
        text_query: TextQuery | None = None
        t0 = time.perf_counter()
        queries = self._query_vectors(request, notes, timings)
        with self.catalog.sessions() as session:
            plan = plan_filters(session, request.filters, self.parser.resolve_label)
            if queries is not None:
                t = time.perf_counter()
                rankings["audio"] = rank_by_vectors(session, self.space_index().index, queries, need, plan)
                timings["audio_search"] = _ms(t)
            if request.text is not None and request.text.strip():
                t = time.perf_counter()
                text_query = self.parser.parse(request.text)
                notes += [f"read {typed!r} as {meant!r}" for typed, meant in text_query.corrections]
                if not text_query.concepts:
                    notes.append(f"{request.text!r} names no AudioSet sound class")
                rankings["text"] = rank_by_text(session, text_query, need, plan)
                timings["text_search"] = _ms(t)
            if not rankings:
                raise QueryError("give an audio example, a sound to search like, or a text")
            ordered = _fuse(rankings, request.weights)
            page = ordered[request.offset : request.offset + request.k]
            results = self._results(session, page, rankings, request.offset)
        timings["total"] = _ms(t0)
        return SearchResponse(
            results=results,
            has_more=len(ordered) > request.offset + request.k,
            kinds=list(rankings),
            text=text_query,
            filters=plan.descriptions,
            notes=notes,
            timings_ms=timings,
        )

    def _query_vectors(self, request: SearchRequest, notes: list[str], timings: dict[str, float]) -> np.ndarray | None:
        """(rows, dim) vectors to search with, or None when the request has no audio side."""
        sources = [x is not None for x in (request.audio, request.samples, request.like)]
        if sum(sources) > 1:
            raise QueryError("give one audio example: a file, an upload or a sound id, not several")
        t = time.perf_counter()
        if request.like is not None:
            vectors = self._stored_vectors(request.like)
        elif request.audio is not None or request.samples is not None:
            if request.audio is not None:
                audio = load_audio(request.audio, max_seconds=MAX_QUERY_S)
                samples, rate = audio.samples, audio.sample_rate
            else:
                samples, rate = request.samples
                samples = samples[: int(MAX_QUERY_S * rate)]
            if len(samples) >= MAX_QUERY_S * rate:
                notes.append(f"the query was cut to its first {MAX_QUERY_S:.0f} s")
            encoded = self.encoder.encode(samples, rate)
            vectors = self.example_vectors(encoded.embeddings, encoded.tags)
        else:
            return None
        timings["query_encode"] = _ms(t)
        return vectors

    def _stored_vectors(self, sound_id: int) -> np.ndarray:
        with self.catalog.sessions() as session:
            space = get_space(session, AUDIO_SPACE)
            if space is None:
                raise QueryError("nothing is indexed yet: run `soundsearch index FOLDER` first")
            seg_ids = np.fromiter(
                session.scalars(select(Segment.id).where(Segment.sound_id == sound_id).order_by(Segment.position)),
                dtype=np.int64,
            )
            if len(seg_ids) == 0:
                raise QueryError(f"no indexed sound has id {sound_id}")
            return segment_vectors(session, space, seg_ids)

    def _results(
        self, session, page: list[tuple[int, float]], rankings: dict[str, list[SoundHit]], offset: int
    ) -> list[SearchResult]:
        ids = [sid for sid, _ in page]
        rows = {
            r.id: r
            for r in session.execute(
                select(Sound.id, Sound.rel_path, Sound.duration_s, Library.name, Library.root)
                .join(Library, Library.id == Sound.library_id)
                .where(Sound.id.in_(ids))
            )
        }
        tags: dict[int, list[TagScore]] = {sid: [] for sid in ids}
        for sid, label, score in session.execute(
            select(SoundTag.sound_id, SoundTag.label, SoundTag.score)
            .where(SoundTag.sound_id.in_(ids))
            .order_by(SoundTag.sound_id, SoundTag.score.desc())
        ):
            if len(tags[sid]) < RESULT_TAGS:
                tags[sid].append(TagScore(self.vocab.names[label], round(float(score), 4)))
        hits = {kind: {h.sound_id: h for h in ranked} for kind, ranked in rankings.items()}
        results = []
        for rank, (sid, score) in enumerate(page, start=offset + 1):
            row = rows[sid]
            best = next(h[sid] for h in hits.values() if sid in h)  # audio's segment first, else text's
            results.append(
                SearchResult(
                    rank=rank,
                    sound_id=sid,
                    library=row.name,
                    rel_path=row.rel_path,
                    path=str(Path(row.root) / row.rel_path),
                    score=round(float(score), 6),
                    start=round(best.start, 3),
                    end=round(best.end, 3),
                    duration=round(row.duration_s, 3),
                    tags=tags[sid],
                    scores={kind: round(float(h[sid].score), 6) for kind, h in hits.items() if sid in h},
                )
            )
        return results


def _fuse(rankings: dict[str, list[SoundHit]], weights: dict[str, float] | None) -> list[tuple[int, float]]:
    """One kind: its own scores. Several: reciprocal-rank fusion."""
    if len(rankings) == 1:
        (ranked,) = rankings.values()
        return [(h.sound_id, h.score) for h in ranked]
    return reciprocal_rank_fusion({k: [h.sound_id for h in v] for k, v in rankings.items()}, weights)


def _ms(t: float) -> float:
    return round((time.perf_counter() - t) * 1000, 2)
