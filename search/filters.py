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
#: A tag filter with at most this many (sound, label) rows is applied first, by listing its sounds.
RARE_MAX = 5_000


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
    tag_labels: list[list[int]] = field(default_factory=list)  # per tag filter, the labels that satisfy it

    def rare_sounds(self, session: Session) -> list[int] | None:
        """The sounds that pass the rarest tag filter, when one keeps at most `RARE_MAX` sounds; else
        None. Rankers then score exactly these instead of skipping through long lists of sounds that
        fail the filter (read from the (label, score) index, so a rare tag costs little to check)."""
        best: list[int] | None = None
        for labels in self.tag_labels:
            # Rows, not distinct sounds: no sort, and at most RARE_MAX rows read before giving up.
            rows = session.scalars(
                select(SoundTag.sound_id)
                .where(SoundTag.label.in_(labels), SoundTag.score >= TAG_FILTER_MIN)
                .limit(RARE_MAX + 1)
            ).all()
            if len(rows) <= RARE_MAX and (best is None or len(set(rows)) < len(best)):
                best = sorted(set(rows))
        return best

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
        plan.tag_labels.append(labels)
    lo, hi = filters.min_duration, filters.max_duration
    if lo is not None and hi is not None and lo > hi:
        raise FilterError(f"min duration {lo} s is above max duration {hi} s")
    if lo is not None:
        plan.clauses.append(Clause(Sound.duration_s >= lo, f"at least {lo:g} s long"))
    if hi is not None:
        plan.clauses.append(Clause(Sound.duration_s <= hi, f"at most {hi:g} s long"))
    return plan
