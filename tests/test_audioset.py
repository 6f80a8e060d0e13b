"""AudioSet labels and ontology from the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from soundsearch.encoders.audioset import AudioSetVocabulary, LabelFileError, read_labels


def test_vocabulary_has_527_labels_and_the_hierarchy(vocab: AudioSetVocabulary) -> None:
    assert len(vocab) == 527
    assert vocab.names[0] == "Speech"
    dog = vocab.index_of_name["dog"]
    animal_mid = next(m for m, c in vocab.ontology.items() if c.name == "Animal")
    assert vocab.mids[dog] in vocab.descendants(animal_mid)
    assert "Animal" in vocab.ancestors(vocab.mids[dog])
    bark = vocab.describe(vocab.index_of_name["bark"])
    assert bark.description and bark.parents


def test_broken_label_file_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "labels.csv"
    bad.write_text("index,mid,display_name\n0,/m/a,A\n2,/m/b,B\n")
    with pytest.raises(LabelFileError, match=r"labels\.csv"):
        read_labels(bad)
