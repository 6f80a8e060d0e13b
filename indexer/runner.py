"""The `index` and `reindex` jobs as the CLI and the API run them: open the catalogue, hold the data
home's writer lock, pick the model of the audio space, and index each library in turn."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from ..config import Settings
from ..encoders.encoder import Encoder
from ..encoders.example_vector import ExampleVectors
from ..encoders.load import model_version, open_encoder, open_vocabulary
from ..encoders.registry import get_entry
from .catalog import LibraryError
from .db import EmbeddingSpace, Library, create_schema, ensure_space, make_engine, reset_space, session_factory
from .ingest import IngestOptions, IngestProgress, IngestReport, index_library
from .lock import writer_lock
from .spaces import AUDIO_SPACE, get_space, open_space_index, rebuild_space_index


@dataclass
class Catalog:
    """The database of a data home (or of `settings.db`), with its schema in place."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]

    @classmethod
    def open(cls, settings: Settings) -> Catalog:
        engine = make_engine(settings.db, settings.home)
        create_schema(engine)
        return cls(settings, engine, session_factory(engine))

    def close(self) -> None:
        self.engine.dispose()

    def space_model(self, name: str = AUDIO_SPACE) -> str | None:
        """The model whose vectors fill the space, or None before the first index run."""
        with self.sessions() as session:
            space = get_space(session, name)
            return space.model_name if space else None


@dataclass(frozen=True)
class AudioSpaceSpec:
    """What the audio space must hold for these settings: which model, which vectors, which size."""

    model: str
    version: str
    dim: int
    sample_rate: int
    vectors: ExampleVectors


def audio_space_spec(settings: Settings, model: str) -> AudioSpaceSpec:
    entry = get_entry(model)
    vectors = ExampleVectors(open_vocabulary(settings), settings.example_tag_weight)
    version = f"{model_version(settings, entry.name)}+{vectors.recipe}"
    return AudioSpaceSpec(entry.name, version, vectors.dim(entry.embedding_dim), entry.sample_rate, vectors)


def index_paths(
    settings: Settings,
    roots: Sequence[Path],
    library: str | None = None,
    model: str | None = None,
    options: IngestOptions | None = None,
    progress: IngestProgress | None = None,
    notify: Callable[[str], None] | None = None,
) -> list[IngestReport]:
    """Index each folder as a library. The model defaults to the one the audio space already holds
    (so plain re-runs need no `--model`), else the settings' default. A different model or vector
    recipe than the space's is refused (`SpaceMismatchError`) until `reindex` rebuilds the space."""
    options = options or IngestOptions(workers=settings.workers)
    if library is not None and len(roots) > 1:
        raise ValueError("--library names one library: give one folder with it")
    catalog = Catalog.open(settings)
    try:
        with writer_lock(settings.home):
            spec = audio_space_spec(settings, model or catalog.space_model() or settings.model)
            with catalog.sessions() as session, session.begin():
                space = ensure_space(session, AUDIO_SPACE, spec.model, spec.version, spec.dim)
            return _index_roots(settings, catalog, space, spec, roots, library, options, progress, notify)
    finally:
        catalog.close()


def _index_roots(
    settings: Settings,
    catalog: Catalog,
    space: EmbeddingSpace,
    spec: AudioSpaceSpec,
    roots: Sequence[Path],
    library: str | None,
    options: IngestOptions,
    progress: IngestProgress | None,
    notify: Callable[[str], None] | None,
) -> list[IngestReport]:
    with catalog.sessions() as session:
        space_index = open_space_index(settings.home, session, space, notify)
    if space_index.repair and notify:
        notify(f"{space.name} index {space_index.repair}")
    encoder: Callable[[], Encoder] = functools.cache(
        lambda: open_encoder(_model_settings(settings, options), spec.model)
    )
    reports = []
    for root in roots:
        try:
            report = index_library(
                settings, catalog.sessions, space, space_index, encoder, spec.vectors, spec.sample_rate, root,
                library, options, progress,
            )  # fmt: skip
        except LibraryError as exc:  # this folder cannot be a library; the others still go on
            report = IngestReport(library or root.name, str(root), error=str(exc))
        reports.append(report)
    return reports


def _model_settings(settings: Settings, options: IngestOptions) -> Settings:
    """Leave the decode workers their cores: torch's threads spin at every barrier, and one that waits
    for a core taken by a decoder makes the whole model several times slower (measured 3× on 2 cores)."""
    if settings.threads or not options.workers:
        return settings
    return settings.model_copy(update={"threads": max(1, (os.cpu_count() or 1) - options.workers)})


@dataclass
class ReindexReport:
    space: str
    model: str
    vectors: int
    seconds: float
    reencoded: list[IngestReport]


def reindex(
    settings: Settings,
    model: str | None = None,
    options: IngestOptions | None = None,
    progress: IngestProgress | None = None,
    notify: Callable[[str], None] | None = None,
) -> ReindexReport:
    """Rebuild the audio space's FAISS index from the vectors in the DB. When the space was made by
    another model or vector recipe than asked (`--model`, or changed settings), first drop the old
    vectors and re-encode every library with the new one."""
    started = time.monotonic()
    catalog = Catalog.open(settings)
    try:
        with writer_lock(settings.home):
            current = catalog.space_model()
            if current is None and model is None:
                raise LookupError("nothing is indexed yet: run `soundsearch index FOLDER` first")
            spec = audio_space_spec(settings, model or current or settings.model)
            with catalog.sessions() as session, session.begin():
                space = get_space(session, AUDIO_SPACE)
                stale = space is not None and (space.model_name, space.model_version, space.dim) != (
                    spec.model, spec.version, spec.dim,
                )  # fmt: skip
                if space is None:
                    space = ensure_space(session, AUDIO_SPACE, spec.model, spec.version, spec.dim)
                elif stale:
                    reset_space(session, space, spec.model, spec.version, spec.dim)
                roots = [(lib.root, lib.name) for lib in session.scalars(select(Library).order_by(Library.id))]
            reports: list[IngestReport] = []
            if stale:
                options = options or IngestOptions(workers=settings.workers)
                for root, name in roots:
                    reports += _index_roots(
                        settings, catalog, space, spec, [Path(root)], name, options, progress, notify
                    )
            with catalog.sessions() as session:
                space = get_space(session, AUDIO_SPACE)
                rebuilt = rebuild_space_index(settings.home, session, space)
            return ReindexReport(
                space.name, space.model_name, rebuilt.index.ntotal, time.monotonic() - started, reports
            )
    finally:
        catalog.close()
