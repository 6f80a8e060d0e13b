"""Embedding spaces and their FAISS indexes, opened consistent with the database.

A saved index is a cache: on open it is checked against the DB (same count and same largest segment id
means same content, because segment ids only grow and are never reused) and repaired with
`VectorIndex.sync` when it missed writes, or rebuilt from the stored vectors when it is missing,
damaged or belongs to another model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .db import Embedding, EmbeddingSpace, load_vectors, space_generation, space_segment_ids
from .vector_index import IndexIdentity, StaleIndexError, VectorIndex, manifest_path

#: The space of example vectors: embedding and ontology-propagated tags per segment (`encoders.example_vector`).
AUDIO_SPACE = "audio"


def index_identity(space: EmbeddingSpace) -> IndexIdentity:
    return IndexIdentity(space.name, space.model_name, space.model_version, space.dim, space.uid)


def get_space(session: Session, name: str) -> EmbeddingSpace | None:
    return session.scalar(select(EmbeddingSpace).where(EmbeddingSpace.name == name))


@dataclass
class SpaceIndex:
    """A space's index and where it is saved."""

    space: EmbeddingSpace
    index: VectorIndex
    manifest: Path
    repair: str | None = None  # what opening it had to do, for the user ("rebuilt ...", "synced ...")

    def save(self) -> None:
        self.index.save(self.manifest)


def open_space_index(
    home: Path,
    session: Session,
    space: EmbeddingSpace,
    notify: Callable[[str], None] | None = None,
    persist: bool = True,
) -> SpaceIndex:
    """The space's index, loaded and made to match the DB; saved again when it had to be repaired, unless
    `persist` is False (readers such as search must not write: only the holder of the writer lock does)."""
    identity = index_identity(space)
    manifest = manifest_path(home, identity)
    generation = space_generation(session, space.id)  # read first: a write after it only makes us re-check
    try:
        index = VectorIndex.load(manifest, identity)
    except (FileNotFoundError, StaleIndexError) as exc:
        if generation == 0:  # nothing was ever written to this space: an empty index, nothing to say
            return SpaceIndex(space, VectorIndex(identity), manifest)
        reason = "no saved index" if isinstance(exc, FileNotFoundError) else str(exc)
        if notify:
            notify(f"rebuilding the {space.name!r} index from the stored vectors ({reason})")
        result = _rebuilt(home, session, space, generation)
        if persist:
            result.save()
        return result
    if matches_db(session, space, index):
        return SpaceIndex(space, index, manifest)
    added, removed = index.sync(
        space_segment_ids(session, space), lambda missing: load_vectors(session, space, missing)
    )
    index.generation = generation
    result = SpaceIndex(space, index, manifest, f"synced with the database (+{added} / -{removed} vectors)")
    if persist:
        result.save()
    return result


def matches_db(session: Session, space: EmbeddingSpace, index: VectorIndex) -> bool:
    """Whether the index holds exactly the space's vectors in the DB. Fast path: the index was made at
    the DB's current generation (one primary-key read). Otherwise compare count and largest id (ids only
    grow, so any write since changes one of the two; the count scans an index, ~50 ms at 1 M vectors)."""
    generation = space_generation(session, space.id)
    if index.generation == generation:
        return True
    count, top = session.execute(
        select(func.count(), func.max(Embedding.segment_id)).where(Embedding.space_id == space.id)
    ).one()
    same = index.ntotal == count and (count == 0 or index.max_id() == top)
    if same:
        index.generation = generation
    return same


def rebuild_space_index(home: Path, session: Session, space: EmbeddingSpace) -> SpaceIndex:
    """Build the index afresh from every vector of the space stored in the DB (`soundsearch reindex`)."""
    result = _rebuilt(home, session, space, space_generation(session, space.id))
    result.save()
    return result


def _rebuilt(home: Path, session: Session, space: EmbeddingSpace, generation: int) -> SpaceIndex:
    identity = index_identity(space)
    index = VectorIndex(identity)
    ids, vectors = load_vectors(session, space)
    if len(ids):
        index.rebuild(ids, vectors, in_place=True)  # a fresh array nobody else holds
    index.generation = generation
    return SpaceIndex(space, index, manifest_path(home, identity), f"rebuilt from {len(ids)} stored vectors")


def segment_vectors(session: Session, space: EmbeddingSpace, segment_ids: np.ndarray) -> np.ndarray:
    """Stored vectors of some segments, in the order given (ids without a vector are an error)."""
    found, vectors = load_vectors(session, space, segment_ids)
    if len(found) != len(np.unique(segment_ids)):
        raise KeyError(f"segments without a vector in space {space.name!r}")
    order = np.searchsorted(found, segment_ids)
    return vectors[order]
