"""The two first-stage rankers: by vector similarity (query by example) and by tag probability (text).

Both rank *sounds* by their best *segment*, both apply the same SQL filters, and both return at least
`need` sounds when the library has them.

Vector search over-fetches segments from FAISS (a long sound has many segments, and filters drop
candidates), groups them by sound in SQL with the filters applied, and fetches four times more until
enough sounds remain. When a filter keeps few sounds, growing the fetch would approach a scan of the
whole index; then the allowed segment ids are read from SQL and FAISS searches only those.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select, union_all
from sqlalchemy.orm import Session

from ..indexer.db import ID_CHUNK, Segment, SegmentTag, Sound, SoundTag
from ..indexer.vector_index import VectorIndex
from .filters import FilterPlan
from .text_query import TextQuery

#: Segments fetched per wanted sound on the first FAISS round, and the least fetched.
FETCH_PER_RESULT = 8
MIN_FETCH = 200
#: Once a filtered over-fetch would pass this many segments, search only the allowed ones instead.
ALLOWED_SWITCH = 20_000
#: Per-label subqueries in one UNION ALL (SQLite allows 500 terms in a compound SELECT).
LABELS_PER_STATEMENT = 200


@dataclass(frozen=True)
class SoundHit:
    """A sound, its score for one query kind, and its best segment."""

    sound_id: int
    score: float
    segment_id: int
    start: float
    end: float


def rank_by_vectors(
    session: Session, index: VectorIndex, queries: np.ndarray, need: int, filters: FilterPlan
) -> list[SoundHit]:
    """Sounds by the best cosine similarity between any of their segments and any query row."""
    total = index.ntotal
    if total == 0:
        return []
    rare = filters.rare_sounds(session)
    if rare is not None:  # a rare tag: search only its sounds' segments, in one FAISS pass
        return _search_allowed(session, index, queries, need, filters, _allowed_segments(session, filters, rare))
    fetch = min(total, max(MIN_FETCH, need * FETCH_PER_RESULT))
    while True:
        ranked = _group_segments(session, _best_per_segment(index.search(queries, fetch)), filters)
        if len(ranked) >= need or fetch >= total:
            return ranked
        if filters.clauses and fetch * 4 > ALLOWED_SWITCH:
            return _search_allowed(session, index, queries, need, filters, _allowed_segments(session, filters))
        fetch = min(total, fetch * 4)


def _allowed_segments(session: Session, filters: FilterPlan, sounds: list[int] | None = None) -> np.ndarray:
    """Segment ids of the sounds that pass the filters (among `sounds` when given)."""
    query = select(Segment.id).join(Sound, Sound.id == Segment.sound_id).where(*filters.conditions)
    if sounds is None:
        return np.fromiter(session.scalars(query), dtype=np.int64)
    found: list[int] = []
    for start in range(0, len(sounds), ID_CHUNK):
        found += session.scalars(query.where(Sound.id.in_(sounds[start : start + ID_CHUNK])))
    return np.array(found, dtype=np.int64)


def _search_allowed(
    session: Session, index: VectorIndex, queries: np.ndarray, need: int, filters: FilterPlan, allowed: np.ndarray
) -> list[SoundHit]:
    """FAISS restricted to the allowed segments, enough of them for `need` sounds."""
    if len(allowed) == 0:
        return []
    k = min(len(allowed), max(MIN_FETCH, need * FETCH_PER_RESULT * 4))
    return _group_segments(session, _best_per_segment(index.search(queries, k, allowed=allowed)), filters)


def _best_per_segment(hits: Iterable) -> dict[int, float]:
    best: dict[int, float] = {}
    for h in hits:
        for score, seg in zip(h.scores.tolist(), h.ids.tolist(), strict=True):
            if score > best.get(seg, -np.inf):
                best[seg] = score
    return best


def _group_segments(session: Session, seg_scores: dict[int, float], filters: FilterPlan) -> list[SoundHit]:
    """Best segment per sound among the scored segments whose sound passes the filters."""
    best: dict[int, SoundHit] = {}
    ids = list(seg_scores)
    for start in range(0, len(ids), ID_CHUNK):
        rows = session.execute(
            select(Segment.id, Segment.sound_id, Segment.start_s, Segment.end_s)
            .join(Sound, Sound.id == Segment.sound_id)
            .where(Segment.id.in_(ids[start : start + ID_CHUNK]), *filters.conditions)
        )
        for seg_id, sound_id, s, e in rows:
            score = seg_scores[seg_id]
            if sound_id not in best or score > best[sound_id].score:
                best[sound_id] = SoundHit(sound_id, score, seg_id, s, e)
    return sorted(best.values(), key=lambda h: (-h.score, h.sound_id))


def rank_by_text(session: Session, query: TextQuery, need: int, filters: FilterPlan) -> list[SoundHit]:
    """Sounds by `query.score` of their stored tag probabilities; the best segment is the one whose own
    tags score highest."""
    labels = query.labels
    if not labels:
        return []
    rare = filters.rare_sounds(session)
    if rare is not None:  # a rare tag: score its few sounds directly
        candidates = _passing(session, filters, rare)
    else:
        candidates = _best_of_each_label(session, labels, max(50, 3 * need), filters)
    tags = _tag_maps(session, SoundTag.sound_id, SoundTag, candidates, labels)
    scores = {sid: query.score(t) for sid, t in tags.items()}
    scored = sorted(((sc, sid) for sid, sc in scores.items() if sc > 0), key=lambda x: (-x[0], x[1]))[:need]
    segments = _best_text_segments(session, query, [sid for _, sid in scored], labels)
    return [SoundHit(sid, score, *segments[sid]) for score, sid in scored]


def _passing(session: Session, filters: FilterPlan, sounds: list[int]) -> set[int]:
    """Those of `sounds` that pass every filter."""
    passing: set[int] = set()
    for start in range(0, len(sounds), ID_CHUNK):
        chunk = sounds[start : start + ID_CHUNK]
        passing.update(session.scalars(select(Sound.id).where(Sound.id.in_(chunk), *filters.conditions)))
    return passing


def _best_of_each_label(session: Session, labels: list[int], per_label: int, filters: FilterPlan) -> set[int]:
    """The `per_label` most probable sounds of every label that pass the filters."""
    # The best sounds of every label, in one statement (one query per label costs a round trip each, and
    # "music" counts 150 labels).
    arms = [
        select(SoundTag.sound_id)
        .join(Sound, Sound.id == SoundTag.sound_id)
        .where(SoundTag.label == label, *filters.conditions)
        .order_by(SoundTag.score.desc())
        .limit(per_label)
        .subquery()
        for label in labels
    ]
    candidates: set[int] = set()
    for start in range(0, len(arms), LABELS_PER_STATEMENT):
        chunk = arms[start : start + LABELS_PER_STATEMENT]
        candidates.update(session.scalars(union_all(*(select(arm.c.sound_id) for arm in chunk))))
    return candidates


def _tag_maps(session: Session, key, table, ids: Iterable[int], labels: list[int]) -> dict[int, dict[int, float]]:
    """{id: {label: score}} for the given sound or segment ids, restricted to `labels`."""
    out: dict[int, dict[int, float]] = defaultdict(dict)
    id_list = sorted(ids)
    for start in range(0, len(id_list), ID_CHUNK):
        rows = session.execute(
            select(key, table.label, table.score).where(
                key.in_(id_list[start : start + ID_CHUNK]), table.label.in_(labels)
            )
        )
        for item, label, score in rows:
            out[item][label] = score
    return out


def _best_text_segments(
    session: Session, query: TextQuery, sound_ids: list[int], labels: list[int]
) -> dict[int, tuple[int, float, float]]:
    """(segment id, start, end) of each sound's segment that the query scores highest."""
    segs: dict[int, list[tuple[int, float, float]]] = defaultdict(list)
    for start in range(0, len(sound_ids), ID_CHUNK):
        rows = session.execute(
            select(Segment.id, Segment.sound_id, Segment.start_s, Segment.end_s)
            .where(Segment.sound_id.in_(sound_ids[start : start + ID_CHUNK]))
            .order_by(Segment.sound_id, Segment.position)
        )
        for seg_id, sound_id, s, e in rows:
            segs[sound_id].append((seg_id, s, e))
    seg_tags = _tag_maps(session, SegmentTag.segment_id, SegmentTag, [s[0] for v in segs.values() for s in v], labels)
    return {sid: max(options, key=lambda seg: query.score(seg_tags.get(seg[0], {}))) for sid, options in segs.items()}
