"""Example vectors: the inner product is the documented blend of embedding and ontology-tag cosines."""

from __future__ import annotations

import numpy as np
import pytest

from soundsearch.encoders.example_vector import ExampleVectors


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_inner_product_is_the_weighted_blend_of_cosines(vocab) -> None:
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(2, 16)).astype(np.float32)
    tags = rng.uniform(0, 1, size=(2, len(vocab))).astype(np.float32)
    make = ExampleVectors(vocab, 0.8)
    v = make(emb, tags)
    p = make.propagate(tags)
    assert v.shape == (2, 16 + len(vocab)) and make.dim(16) == v.shape[1]
    assert float(v[0] @ v[1]) == pytest.approx(0.2 * cos(emb[0], emb[1]) + 0.8 * cos(p[0], p[1]), rel=1e-5)
    assert np.linalg.norm(v, axis=1) == pytest.approx([1.0, 1.0], rel=1e-5)


def test_a_class_takes_the_best_score_below_it_in_the_ontology(vocab) -> None:
    tags = np.zeros((1, len(vocab)), dtype=np.float32)
    dog, animal, music = (vocab.index_of_name[n] for n in ("dog", "animal", "music"))
    tags[0, dog] = 0.9
    p = ExampleVectors(vocab, 0.5).propagate(tags)[0]
    assert p[dog] == pytest.approx(0.9) and p[animal] == pytest.approx(0.9) and p[music] == 0


def test_a_bark_and_a_moo_share_more_than_a_bark_and_a_gunshot(vocab) -> None:
    """Semantics through the ontology: two animals are closer than an animal and a weapon."""
    make = ExampleVectors(vocab, 1.0)
    tags = np.zeros((3, len(vocab)), dtype=np.float32)
    for row, name in enumerate(("bark", "moo", "gunshot, gunfire")):
        tags[row, vocab.index_of_name[name]] = 0.8
    v = make(np.ones((3, 4), dtype=np.float32), tags)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.1


def test_weight_out_of_range_is_refused(vocab) -> None:
    with pytest.raises(ValueError, match="tag weight"):
        ExampleVectors(vocab, 1.5)
