"""The AudioSet vocabulary: the 527 tagger classes in output order, and the ontology around them.

Both files are checksummed assets of the model store (never fetched at import time). The ontology gives
each class a description, parents and children, which text search uses to expand "Animal" into dogs
and cows.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path


@dataclass
class Category:
    """One ontology node."""

    mid: str
    name: str
    description: str = ""
    children: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)
    abstract: bool = False


class LabelFileError(ValueError):
    """A label CSV or ontology file that is not what the store expects."""


def read_labels(path: Path) -> list[tuple[str, str]]:
    """(mid, display name) for every output index of the tagger, in index order."""
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    try:
        ordered = sorted(rows, key=lambda r: int(r["index"]))
        labels = [(r["mid"], r["display_name"]) for r in ordered]
    except (KeyError, ValueError) as exc:
        raise LabelFileError(f"{path}: not an AudioSet class_labels_indices.csv ({exc})") from exc
    if [int(r["index"]) for r in ordered] != list(range(len(ordered))):
        raise LabelFileError(f"{path}: class indices are not 0..{len(ordered) - 1}")
    return labels


def read_ontology(path: Path) -> dict[str, Category]:
    """Ontology nodes by mid, with parent links filled in from the children lists."""
    try:
        nodes = json.loads(path.read_text(encoding="utf-8"))
        cats = {
            n["id"]: Category(
                mid=n["id"],
                name=n["name"],
                description=n.get("description", ""),
                children=list(n.get("child_ids", [])),
                abstract="abstract" in n.get("restrictions", []),
            )
            for n in nodes
        }
    except (ValueError, KeyError, TypeError) as exc:
        raise LabelFileError(f"{path}: not an AudioSet ontology.json ({exc})") from exc
    for cat in cats.values():
        for child in cat.children:
            if child in cats:
                cats[child].parents.append(cat.mid)
    return cats


class AudioSetVocabulary:
    """Labels of the tagger's outputs joined with the ontology."""

    def __init__(self, labels: list[tuple[str, str]], ontology: dict[str, Category] | None = None) -> None:
        self.mids = [mid for mid, _ in labels]
        self.names = [name for _, name in labels]
        self.ontology = ontology or {}
        self.index_of_mid = {mid: i for i, mid in enumerate(self.mids)}

    @classmethod
    def from_files(cls, labels_csv: Path, ontology_json: Path | None = None) -> AudioSetVocabulary:
        return cls(read_labels(labels_csv), read_ontology(ontology_json) if ontology_json else None)

    def __len__(self) -> int:
        return len(self.names)

    @cached_property
    def index_of_name(self) -> dict[str, int]:
        return {name.casefold(): i for i, name in enumerate(self.names)}

    def descendants(self, mid: str) -> set[str]:
        """The node and everything below it in the ontology (cycles are tolerated)."""
        seen: set[str] = set()
        stack = [mid]
        while stack:
            cur = stack.pop()
            if cur in seen:
                continue
            seen.add(cur)
            cat = self.ontology.get(cur)
            if cat:
                stack.extend(cat.children)
        return seen

    def ancestors(self, mid: str) -> list[str]:
        """Names of the path from the ontology's root down to the node's parent (first parent chain)."""
        chain: list[str] = []
        cur = self.ontology.get(mid)
        while cur and cur.parents:
            parent = self.ontology.get(cur.parents[0])
            if parent is None or parent.name in chain:
                break
            chain.append(parent.name)
            cur = parent
        return list(reversed(chain))

    def describe(self, index: int) -> Category:
        """Ontology node of an output index (a bare node when the ontology is not loaded)."""
        mid = self.mids[index]
        return self.ontology.get(mid) or Category(mid=mid, name=self.names[index])
