"""Result filters as SQL conditions on `sounds`, each with a description the UI and CLI can show.

Every search (text, audio, both) applies the same filters: text search inside its SQL, audio search on
the FAISS candidates it over-fetches (or inside FAISS when a filter is selective; see `engine`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.orm import Session, aliased

from ..indexer.db import Library, Sound, SoundTag

#: A sound "has" a tag when the tagger gives it at least this probability.
TAG_FILTER_MIN = 0.1


class FilterError(ValueError):
    """A filter value that names nothing (unknown library or tag) or is out of range."""


@dataclass(frozen=True)
class Filters:
    libraries: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()  # each must be present (AND); a tag includes its ontology children
    min_duration: float | None = None
    max_duration: float | None = None

    @property
    def active(self) -> bool:
        return bool(self.libraries or self.tags or self.min_duration is not None or self.max_duration is not None)


@dataclass(frozen=True)
class Clause:
    condition: ColumnElement[bool]
    description: str


@dataclass
class FilterPlan:
    clauses: list[Clause] = field(default_factory=list)

    @property
    def conditions(self) -> list[ColumnElement[bool]]:
        return [c.condition for c in self.clauses]

    @property
    def descriptions(self) -> list[str]:
        return [c.description for c in self.clauses]


def plan_filters(session: Session, filters: Filters, resolve_tag: Callable[[str], list[int]]) -> FilterPlan:
    """SQL conditions for the filters; `FilterError` names the value that matches nothing."""
    plan = FilterPlan()
    if filters.libraries:
        names = list(dict.fromkeys(filters.libraries))
        found = dict(session.execute(select(Library.name, Library.id).where(Library.name.in_(names))).all())
        missing = [n for n in names if n not in found]
        if missing:
            known = ", ".join(sorted(session.scalars(select(Library.name)))) or "none yet"
            raise FilterError(f"no library named {', '.join(map(repr, missing))} (libraries: {known})")
        plan.clauses.append(Clause(Sound.library_id.in_(list(found.values())), f"library is {' or '.join(names)}"))
    for tag in filters.tags:
        labels = resolve_tag(tag)
        if not labels:
            raise FilterError(f"tag {tag!r} matches no AudioSet label")
        # An alias: text search already selects from sound_tags, and the subquery must not correlate to it.
        tagged = aliased(SoundTag)
        has_tag = exists(
            select(tagged.sound_id).where(
                tagged.sound_id == Sound.id, tagged.label.in_(labels), tagged.score >= TAG_FILTER_MIN
            )
        )
        plan.clauses.append(Clause(has_tag, f"tagged {tag!r} (p >= {TAG_FILTER_MIN})"))
    lo, hi = filters.min_duration, filters.max_duration
    if lo is not None and hi is not None and lo > hi:
        raise FilterError(f"min duration {lo} s is above max duration {hi} s")
    if lo is not None:
        plan.clauses.append(Clause(Sound.duration_s >= lo, f"at least {lo:g} s long"))
    if hi is not None:
        plan.clauses.append(Clause(Sound.duration_s <= hi, f"at most {hi:g} s long"))
    return plan
