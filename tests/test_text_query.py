"""Text queries against the real AudioSet labels and ontology."""

from __future__ import annotations

import time

import pytest

from soundsearch.encoders.audioset import AudioSetVocabulary
from soundsearch.search.text_query import TextQueryParser


@pytest.fixture(scope="module")
def parser(vocab: AudioSetVocabulary) -> TextQueryParser:
    return TextQueryParser(vocab)


def label(vocab: AudioSetVocabulary, name: str) -> int:
    return vocab.names.index(name)


def names(parser: TextQueryParser, text: str) -> list[str]:
    return [c.name for c in parser.parse(text).concepts]


def test_dog_covers_dog_sounds_below_it(parser: TextQueryParser, vocab: AudioSetVocabulary) -> None:
    (dog,) = parser.parse("dog").concepts
    assert (dog.label, dog.name, dog.matched) == (label(vocab, "Dog"), "Dog", "Dog")
    assert dog.weights[dog.label] == 1.0
    for sound in ("Bark", "Howl", "Yip", "Bow-wow", "Whimper (dog)"):
        assert 0 < dog.weights[label(vocab, sound)] < 1, sound
    assert label(vocab, "Cat") not in dog.weights


def test_animal_covers_pets_and_livestock_with_decay(parser: TextQueryParser, vocab: AudioSetVocabulary) -> None:
    (animal,) = parser.parse("Animal").concepts
    w = {name: animal.weights.get(label(vocab, name), 0.0) for name in ("Animal", "Dog", "Bark", "Cattle, bovinae")}
    assert w["Animal"] == 1.0
    assert 0 < w["Bark"] < w["Dog"] < 1  # Bark sits one level below Dog
    assert 0 < w["Cattle, bovinae"] < 1
    assert label(vocab, "Music") not in animal.weights


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("dogs barking", ["Dog", "Bark"]),
        ("swoosh", ["Whoosh, swoosh, swish"]),
        ("pop music", ["Pop music"]),
        ("car horn", ["Vehicle horn, car horn, honking"]),
        ("cars passing by", ["Car passing by"]),
        ("glass breaking", ["Glass", "Breaking"]),
        ("dog sound", ["Dog"]),
        ("explosion sound effect", ["Explosion"]),
        ("sound effect", ["Sound effect"]),
        ("noise", ["Noise"]),
        ("wolves howling", ["Canidae, dogs, wolves", "Howl"]),
        ("mice", ["Mouse"]),
        ("lions", ["Roaring cats (lions, tigers)"]),
        ("dog whimper", ["Whimper (dog)"]),
        ("whimper", ["Whimper"]),
        ("bass drum", ["Bass drum"]),
        ("drum and bass", ["Drum and bass"]),
        ("drawer closing", ["Drawer open or close"]),
        ("dentist's drill", ["Dental drill, dentist's drill"]),
        ("oboe", []),  # an ontology node the tagger has no output for, at or below it
    ],
)
def test_query_names(parser: TextQueryParser, text: str, expected: list[str]) -> None:
    assert names(parser, text) == expected


@pytest.mark.parametrize("text", ["bow-wow", "bow wow", "Bow-Wow", "bowwow"])
def test_hyphenated_words_match_joined_split_and_hyphenated(parser: TextQueryParser, text: str) -> None:
    query = parser.parse(text)
    assert [(c.name, c.matched) for c in query.concepts] == [("Bow-wow", "Bow-wow")]
    assert query.unmatched == ()


def test_typo_is_corrected_and_reported(parser: TextQueryParser) -> None:
    query = parser.parse("explsion")
    assert [c.name for c in query.concepts] == ["Explosion"]
    assert query.corrections == (("explsion", "Explosion"),)
    assert query.unmatched == ()


def test_words_the_ontology_uses_are_not_typos(parser: TextQueryParser) -> None:
    query = parser.parse("storm")  # close to "Strum", but a real word
    assert (query.concepts, query.corrections, query.unmatched) == ((), (), ("storm",))


def test_stop_words_alone_name_nothing(parser: TextQueryParser) -> None:
    query = parser.parse("the of a")
    assert (query.concepts, query.unmatched, query.labels) == ((), (), [])
    assert query.score({0: 1.0}) == 0.0


def test_unknown_words_are_unmatched(parser: TextQueryParser) -> None:
    query = parser.parse("xyzzy dog with qwv")
    assert names(parser, query.text) == ["Dog"]
    assert query.unmatched == ("xyzzy", "qwv")


def test_abstract_node_expands_without_its_own_label(parser: TextQueryParser, vocab: AudioSetVocabulary) -> None:
    (voice,) = parser.parse("human voice").concepts
    assert voice.label is None and voice.name == "Human voice"
    assert 0 < voice.weights[label(vocab, "Speech")] < 1


def test_score(parser: TextQueryParser, vocab: AudioSetVocabulary) -> None:
    dog, cat, bark = (label(vocab, n) for n in ("Dog", "Cat", "Bark"))
    query = parser.parse("dog")
    assert query.score({dog: 0.8}) == pytest.approx(0.8)
    assert query.score({dog: 0.8}) > query.score({cat: 0.8}) == 0.0
    assert query.score({bark: 1.0}) == pytest.approx(query.concepts[0].weights[bark])
    both = parser.parse("dogs barking")
    assert both.score({dog: 0.8, bark: 0.4}) == pytest.approx(0.6)  # mean over concepts
    assert both.score({dog: 0.8}) == pytest.approx(0.4)


def test_score_counts_alternatives_for_the_same_words_once(parser: TextQueryParser, vocab: AudioSetVocabulary) -> None:
    query = parser.parse("crow")
    assert sorted(c.name for c in query.concepts) == ["Crow", "Crowing, cock-a-doodle-doo"]
    assert query.score({label(vocab, "Crowing, cock-a-doodle-doo"): 0.6}) == pytest.approx(0.6)


def test_labels_are_the_union_of_concept_weights(parser: TextQueryParser, vocab: AudioSetVocabulary) -> None:
    labels = parser.parse("dogs barking").labels
    assert labels == sorted(labels)
    assert {label(vocab, "Dog"), label(vocab, "Bark"), label(vocab, "Howl")} <= set(labels)


def test_resolve_label(parser: TextQueryParser, vocab: AudioSetVocabulary) -> None:
    dog = parser.resolve_label("Dog")
    assert label(vocab, "Dog") in dog and label(vocab, "Bark") in dog
    assert parser.resolve_label("whimper") == [label(vocab, "Whimper")]  # a display name beats a synonym
    assert label(vocab, "Vehicle horn, car horn, honking") in parser.resolve_label("car horn")
    assert label(vocab, "Bark") in parser.resolve_label("dogs barking")  # no exact name: parsed


def test_without_ontology_a_class_covers_only_itself(vocab: AudioSetVocabulary) -> None:
    flat = TextQueryParser(AudioSetVocabulary(list(zip(vocab.mids, vocab.names, strict=True))))
    (animal,) = flat.parse("Animal").concepts
    assert animal.weights == {label(vocab, "Animal"): 1.0}
    assert flat.parse("human voice").concepts == ()


def test_parse_is_fast(parser: TextQueryParser) -> None:
    queries = ["dogs barking", "Animal", "bow-wow", "cars passing by", "explsion", "glass breaking in a large hall"]
    start = time.perf_counter()
    for n in range(1000):
        parser.parse(queries[n % len(queries)])
    assert time.perf_counter() - start < 1.0


def test_everyday_words_name_the_class_a_user_means(vocab) -> None:
    from soundsearch.search.text_query import EXTRA_SYNONYMS

    assert set(EXTRA_SYNONYMS) <= set(vocab.names)  # every extra belongs to a real class
    parser = TextQueryParser(vocab)
    for text, name in (("cow", "Cattle, bovinae"), ("cows mooing", "Cattle, bovinae"), ("kitten", "Cat"),
                       ("police", "Police car (siren)"), ("rifle shots", "Gunshot, gunfire")):  # fmt: skip
        names = [c.name for c in parser.parse(text).concepts]
        assert name in names, (text, names)
