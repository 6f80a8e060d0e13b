"""Text queries to AudioSet labels: "dogs barking" → Dog, Bark; "Animal" → every animal label below it.

Every sound is tagged with the 527 AudioSet classes, so a text query is answered by naming classes and
scoring sounds by their tag probabilities. The rules, in the order they apply:

**Synonyms.** A display name is a comma-separated list of synonyms ("Vehicle horn, car horn, honking").
A parenthesised phrase is an optional qualifier ("Whimper (dog)" matches "whimper" alone, and "dog
whimper" better); a parenthesised list gives more synonyms ("Roaring cats (lions, tigers)"); words joined
by "or" are alternatives of which one must be named ("Drawer open or close"). With the ontology loaded,
abstract nodes such as "Human voice" or "Music genre" are matchable too; nodes with no tagger output at
or below them (e.g. "Oboe") are not, since no sound could ever score for them.

**Words.** Query and synonyms go through the same normalisation, so that any spelling a label can be
written in is also one a query can be written in: casefold, split on everything but letters and digits
(apostrophes are dropped, "dentist's" → "dentists"), drop a small set of stop words, map a few irregular
plurals ("wolves" → "wolf"), then Snowball-stem ("barking" → "bark"). Stemming only one side would miss
"dogs barking" against "Dog" and "Bark". A hyphenated word stands for both its joined form and its parts,
so "bow-wow", "bow wow" and "bowwow" all name "Bow-wow". "sound"/"sounds" are filler ("dog sound"), and so
is "sound effect" unless it is the whole query; "noise" is not filler, it is a class.

**Matching.** A synonym matches when every one of its words occurs in the query, in any order. When the
query words one match covers are a strict subset of another's, only the larger match is kept: "pop music"
means the genre, not Pop music *and* Music, and "car horn" means the horn, not also Car. Matches covering
exactly the same words are alternatives ("crow" → Crow, Crowing); a match in the query's word order, then
one with fewer unnamed qualifier words, then a label's first synonym is preferred ("bass drum" → Bass
drum, not Drum and bass; "rattle" → Rattle, not Rattle (instrument); "dog" → Dog, not "Canidae, dogs,
wolves"), and the rest of the tie is kept.

**Typos.** A query word of four or more letters that named nothing is compared (difflib, cutoff 0.8)
with the one-word synonyms, and read as the closest ("explsion" → Explosion); the correction is reported.
A word the ontology itself uses in a name or description ("storm") is taken as meant, not as a typo.

**Hierarchy.** A matched class weighs 1.0 and each tagger class below it in the ontology 0.9 per level
(the shortest path counts; cycles are tolerated), so "Animal" finds dogs and cows, while a sound tagged
Animal itself still ranks first. Without the ontology a class covers only itself.

**Score.** A sound's text score is, for each group of query words, the best weighted tag probability of
the concepts those words named, averaged over the groups: "dogs barking" wants both a dog and a bark,
"crow" wants either a crow or a crowing rooster.
"""

from __future__ import annotations

import difflib
import re
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import snowballstemmer

from ..encoders.audioset import AudioSetVocabulary

STOP_WORDS = frozenset(
    {"a", "an", "the", "of", "by", "on", "in", "with", "and", "or", "for", "to", "from", "at", "as", "is", "are", "etc"}
    | {"sound", "sounds"}  # filler in "dog sound"; "noise" is a class, not filler
)
IRREGULAR_PLURALS = {
    "knives": "knife",
    "wolves": "wolf",
    "geese": "goose",
    "mice": "mouse",
    "teeth": "tooth",
    "feet": "foot",
    "children": "child",
    "people": "person",
    "women": "woman",
    "men": "man",
    "leaves": "leaf",
    "calves": "calf",
}
#: Everyday words that no AudioSet display name contains ("cow" is only "Cattle, bovinae"), added as
#: synonyms of the class a user typing them means.
EXTRA_SYNONYMS = {
    "Cattle, bovinae": "cow, bull, ox",
    "Dog": "puppy, hound, doggy",
    "Cat": "kitten, kitty",
    "Horse": "pony, stallion, mare",
    "Pig": "piglet, hog, swine",
    "Sheep": "lamb, ewe",
    "Chicken, rooster": "hen, chick",
    "Gunshot, gunfire": "gun, rifle, pistol",
    "Police car (siren)": "police",
    "Explosion": "blast, detonation",
    "Shatter": "smash",
    "Car": "automobile",
    "Laughter": "laugh",
    "Speech": "talk, talking, spoken",
}
FILLER = ("sound", "effect")  # stems of a query phrase that is filler unless it is the whole query
LEVEL_DECAY = 0.9
TYPO_CUTOFF = 0.8
TYPO_MIN_LENGTH = 4

_WORD = re.compile(r"[^\W_]+(?:-[^\W_]+)*")
_APOSTROPHE = re.compile(r"(?<=[^\W_])['’](?=[^\W_])")
_PARENTHESIS = re.compile(r"\(([^)]*)\)")
_LEADING_CONJUNCTION = re.compile(r"^(?:and|or)\s+", re.IGNORECASE)
_STEMMER = snowballstemmer.stemmer("english")
_STEMMER_LOCK = threading.Lock()


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Stem of one casefolded word, irregular plurals first ("wolves" → "wolf")."""
    word = IRREGULAR_PLURALS.get(word, word)
    with _STEMMER_LOCK:  # a Snowball stemmer object keeps state between calls
        return _STEMMER.stemWord(word)


def words(text: str) -> list[str]:
    """Casefolded words of a text, hyphenated words kept whole: "Bow-Wow!" → ["bow-wow"]."""
    return _WORD.findall(_APOSTROPHE.sub("", text.casefold()))


def _parts(word: str) -> list[str]:
    """Non-stop parts of a possibly hyphenated word: "cock-a-doodle-doo" → ["cock", "doodle", "doo"]."""
    return [p for p in word.split("-") if p not in STOP_WORDS]


def _ways(word: str) -> tuple[frozenset[str], ...]:
    """Stem sets that name a word, all of a set needed: its stem; for "bow-wow" the joined stem or the parts."""
    parts = _parts(word)
    if len(parts) <= 1:
        return (frozenset(stem(p) for p in parts),) if parts else ()
    return frozenset([stem("".join(parts))]), frozenset(stem(p) for p in parts)


@dataclass(frozen=True)
class Concept:
    """One class a query named, with the tagger outputs that count for it."""

    label: int | None  # tagger output index of the matched class (None for an ontology-only node)
    name: str  # display name of the matched class
    matched: str  # the synonym that matched, as the display name writes it, e.g. "Bow-wow"
    weights: dict[int, float]  # tagger output index -> weight in (0, 1]; never empty
    words: tuple[str, ...] = ()  # query words that named it; concepts naming the same words are alternatives

    def score(self, tag_scores: Mapping[int, float]) -> float:
        """Best weighted tag probability: max_l weights[l] * p(l)."""
        # Loop over the smaller side: a sound has a few stored tags, "Music" counts 150 labels.
        if len(tag_scores) < len(self.weights):
            return max((self.weights.get(i, 0.0) * p for i, p in tag_scores.items()), default=0.0)
        return max((w * tag_scores.get(i, 0.0) for i, w in self.weights.items()), default=0.0)


@dataclass(frozen=True)
class TextQuery:
    """A parsed text query."""

    text: str
    concepts: tuple[Concept, ...]
    unmatched: tuple[str, ...]  # query words that named nothing (stop words excluded)
    corrections: tuple[tuple[str, str], ...]  # (typed word, synonym it was read as)

    @property
    def labels(self) -> list[int]:
        """Every tagger output some concept counts, sorted."""
        return sorted({i for c in self.concepts for i in c.weights})

    def score(self, tag_scores: Mapping[int, float]) -> float:
        """Text score of one sound or segment: mean over concepts of max_l weights[l] * p(l); 0 when no concept.

        Concepts named by the same query words are alternatives ("crow" → Crow, Crowing) and count once,
        with the best of them; a concept without words counts on its own.
        """
        groups: dict[tuple[str, ...] | int, float] = {}
        for n, concept in enumerate(self.concepts):
            key = concept.words or n
            groups[key] = max(groups.get(key, 0.0), concept.score(tag_scores))
        return sum(groups.values()) / len(groups) if groups else 0.0


@dataclass(frozen=True)
class _Node:
    """A matchable ontology node: a tagger class, or an abstract node with tagger classes below it."""

    label: int | None
    name: str
    weights: dict[int, float]


@dataclass(frozen=True)
class _Synonym:
    """One way of naming a node."""

    node: int  # index into TextQueryParser._nodes
    text: str
    primary: bool  # the display name's first synonym
    required: tuple[tuple[frozenset[str], ...], ...]  # per word, the stem sets that name it (see _ways)
    optional: frozenset[str]  # stems of qualifier words


@dataclass(frozen=True)
class _Match:
    synonym: _Synonym
    covered: frozenset[int]  # positions of the query words it names
    in_order: bool  # its words occur in the query in the synonym's order
    missing: int  # qualifier words the query does not name

    @property
    def preference(self) -> tuple[bool, int, bool]:
        """Ranks matches that name the same query words."""
        return self.in_order, -self.missing, self.synonym.primary


def _split_synonyms(name: str) -> list[tuple[str, str]]:
    """(synonym, qualifier) pairs of a display name; a comma inside parentheses does not split synonyms,
    a parenthesised list adds synonyms ("Roaring cats (lions, tigers)")."""
    pieces, depth, start = [], 0, 0
    for i, ch in enumerate(name + ","):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth <= 0:
            pieces.append(name[start:i])
            start = i + 1
    out: list[tuple[str, str]] = []
    for piece in pieces:
        inner = _PARENTHESIS.findall(piece)
        main = _LEADING_CONJUNCTION.sub("", _PARENTHESIS.sub(" ", piece).strip())
        out.append((main, " ".join(q for q in inner if "," not in q)))
        out.extend((item.strip(), "") for q in inner if "," in q for item in q.split(","))
    return [(main, qualifier) for main, qualifier in out if main]


def _required(text: str) -> tuple[tuple[frozenset[str], ...], ...]:
    """Per content word of a synonym the stem sets that name it; "open or close" is one word, either will do."""
    slots: list[tuple[frozenset[str], ...]] = []
    alternative = False
    for word in words(text):
        if word == "or":
            alternative = bool(slots)
        elif ways := _ways(word):
            if alternative:
                slots[-1] += ways
            else:
                slots.append(ways)
            alternative = False
    return tuple(slots)


def _match(synonym: _Synonym, where: dict[str, set[int]]) -> _Match | None:
    """How a synonym matches query words (stem → positions), or None when a word of it is not named."""
    covered: set[int] = set()
    firsts: list[int] = []
    for slot in synonym.required:
        span = {i for way in slot if all(s in where for s in way) for s in way for i in where[s]}
        if not span:
            return None
        covered |= span
        firsts.append(min(span))
    named = synonym.optional & where.keys()
    covered.update(i for s in named for i in where[s])
    return _Match(synonym, frozenset(covered), firsts == sorted(firsts), len(synonym.optional) - len(named))


class TextQueryParser:
    """Turns query text into AudioSet concepts; build once per vocabulary, then parse in well under 1 ms."""

    def __init__(self, vocab: AudioSetVocabulary) -> None:
        self.vocab = vocab
        self._nodes: list[_Node] = []
        self._synonyms: list[_Synonym] = []
        self._by_stem: dict[str, list[_Synonym]] = {}
        self._typo_targets: dict[str, tuple[str, _Synonym]] = {}  # one-word synonym -> (its stem, synonym)
        named = [(mid, vocab.names[i]) for i, mid in enumerate(vocab.mids)]
        named += [(mid, cat.name) for mid, cat in vocab.ontology.items() if mid not in vocab.index_of_mid]
        for mid, name in named:
            if weights := self._weights(mid):
                self._add_node(_Node(vocab.index_of_mid.get(mid), name, weights), EXTRA_SYNONYMS.get(name))
        self._known_stems = {
            stem(p)
            for cat in vocab.ontology.values()
            for w in words(f"{cat.name} {cat.description}")
            for p in _parts(w)
        }

    def _weights(self, mid: str) -> dict[int, float]:
        """Tagger outputs at and below an ontology node: 1.0 for the node, LEVEL_DECAY per level down."""
        depth = {mid: 0}
        queue = deque([mid])
        while queue:
            cat = self.vocab.ontology.get(cur := queue.popleft())
            for child in cat.children if cat else ():
                if child not in depth:
                    depth[child] = depth[cur] + 1
                    queue.append(child)
        return {self.vocab.index_of_mid[m]: LEVEL_DECAY**d for m, d in depth.items() if m in self.vocab.index_of_mid}

    def _add_node(self, node: _Node, extra: str | None = None) -> None:
        names = node.name if extra is None else f"{node.name}, {extra}"
        for n, (text, qualifier) in enumerate(_split_synonyms(names)):
            required = _required(text)
            if not required:  # "etc."
                continue
            optional = frozenset(s for w in words(qualifier) for way in _ways(w) for s in way)
            synonym = _Synonym(len(self._nodes), text, n == 0, required, optional)
            self._synonyms.append(synonym)
            for s in {s for slot in required for way in slot for s in way}:
                self._by_stem.setdefault(s, []).append(synonym)
            content = [w for w in words(text) if w not in STOP_WORDS]
            if len(content) == 1:
                joined = "".join(_parts(content[0]))
                self._typo_targets.setdefault(joined, (stem(joined), synonym))
        self._nodes.append(node)

    def parse(self, text: str) -> TextQuery:
        """Concepts a text query names, the typos read on the way, and the words that named nothing."""
        query = words(text)
        parts = [p for w in query for p in w.split("-")]
        stems = {i: stem(p) for i, p in enumerate(parts) if p not in STOP_WORDS}
        filler = {i for i in stems if i > 0 and (stem(parts[i - 1]), stems[i]) == FILLER}
        if filler != stems.keys():
            stems = {i: s for i, s in stems.items() if i not in filler}
        joined = self._joined(query, stems.keys())
        matches = self._matches(stems, joined)
        covered = {i for m in matches for i in m.covered}
        corrections = []
        for i in sorted(stems.keys() - covered):
            if target := self._correct(parts[i]):
                stems[i] = target[0]
                corrections.append((parts[i], target[1].text))
        if corrections:
            matches = self._matches(stems, joined)
            covered = {i for m in matches for i in m.covered}
        concepts = tuple(
            Concept(
                label=(node := self._nodes[m.synonym.node]).label,
                name=node.name,
                matched=m.synonym.text,
                weights=dict(node.weights),
                words=tuple(parts[i] for i in sorted(m.covered)),
            )
            for m in matches
        )
        unmatched = tuple(parts[i] for i in sorted(stems.keys() - covered))
        return TextQuery(text, concepts, unmatched, tuple(corrections))

    @staticmethod
    def _joined(query: list[str], content: set[int]) -> dict[str, set[int]]:
        """Joined stems of hyphenated query words ("bow-wow" → "bowwow") with the positions of their parts."""
        joined: dict[str, set[int]] = {}
        start = 0
        for word in query:
            n = word.count("-") + 1
            if n > 1 and (span := content & set(range(start, start + n))):
                joined.setdefault(stem("".join(_parts(word))), set()).update(span)
            start += n
        return joined

    def _matches(self, stems: dict[int, str], joined: dict[str, set[int]]) -> list[_Match]:
        """The maximal, preferred synonym matches, one per named node, in query order."""
        where: dict[str, set[int]] = {s: set(span) for s, span in joined.items()}
        for i, s in stems.items():
            where.setdefault(s, set()).add(i)
        best: dict[int, _Match] = {}
        for synonym in {id(syn): syn for s in where for syn in self._by_stem.get(s, ())}.values():
            if (match := _match(synonym, where)) is None:
                continue
            if old := best.get(synonym.node):
                keep = max(old, match, key=lambda m: (len(m.covered), m.preference))
                match = _Match(keep.synonym, old.covered | match.covered, keep.in_order, keep.missing)
            best[synonym.node] = match
        maximal = [m for m in best.values() if not any(m.covered < o.covered for o in best.values())]
        top: dict[frozenset[int], tuple[bool, int, bool]] = {}
        for m in maximal:
            top[m.covered] = max(top.get(m.covered, m.preference), m.preference)
        kept = [m for m in maximal if m.preference == top[m.covered]]
        return sorted(kept, key=lambda m: (min(m.covered), m.synonym.node))

    def _correct(self, word: str) -> tuple[str, _Synonym] | None:
        """(stem, synonym) of the one-word synonym a mistyped query word most likely meant, if any."""
        if len(word) < TYPO_MIN_LENGTH or not word.isalpha() or stem(word) in self._known_stems:
            return None
        close = difflib.get_close_matches(word, self._typo_targets.keys(), n=1, cutoff=TYPO_CUTOFF)
        return self._typo_targets[close[0]] if close else None

    def resolve_label(self, text: str) -> list[int]:
        """Tagger outputs a tag filter means, with everything below them in the ontology: the class whose
        display name is the text, else the classes one of whose synonyms is, else what the text names as a query."""
        wanted = " ".join(text.casefold().split())
        nodes = {n for n, node in enumerate(self._nodes) if node.name.casefold() == wanted}
        nodes = nodes or {syn.node for syn in self._synonyms if syn.text.casefold() == wanted}
        if not nodes:
            return self.parse(text).labels
        return sorted({i for n in nodes for i in self._nodes[n].weights})
