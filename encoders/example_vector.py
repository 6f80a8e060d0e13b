"""The vector that query-by-example compares: what a sound *is* blended with how it *sounds*.

The encoder's embedding alone groups sounds by acoustic shape: a short bark lands next to sword hits
and axe chops (short, loud, noisy) before a cow's moo. The tagger's 527 probabilities say what the
sound is, and propagating each probability up the AudioSet ontology (a class scores the max of itself
and everything below it) makes a bark and a moo share "Animal" and "Domestic animals". So the vector is

    [ sqrt(1 − λ) · e / |e| ,  sqrt(λ) · p / |p| ]

with e the embedding and p the propagated probabilities. Its inner product with another such vector is
(1 − λ)·cos(e, e′) + λ·cos(p, p′): one FAISS search ranks by the blend. With λ = 0.8 (the default)
"what it is" dominates and the acoustic term orders sounds within a kind; λ = 0 is the plain embedding.
"""

from __future__ import annotations

import numpy as np

from .audioset import AudioSetVocabulary


class ExampleVectors:
    """Turns encoder outputs (embeddings and tag probabilities per segment) into example vectors."""

    def __init__(self, vocab: AudioSetVocabulary, tag_weight: float) -> None:
        if not 0.0 <= tag_weight <= 1.0:
            raise ValueError(f"tag weight must be in [0, 1], got {tag_weight}")
        self.tag_weight = tag_weight
        self.classes = len(vocab)
        # For each class, the tagger outputs at or below it in the ontology, laid end to end so that one
        # `np.maximum.reduceat` propagates a whole batch (a loop over 527 classes cost 1.6 ms a call).
        below = [
            sorted(vocab.index_of_mid[d] for d in vocab.descendants(mid) if d in vocab.index_of_mid) or [i]
            for i, mid in enumerate(vocab.mids)
        ]
        self._flat = np.fromiter((j for b in below for j in b), dtype=np.int64)
        self._starts = np.cumsum([0] + [len(b) for b in below[:-1]])

    def dim(self, embedding_dim: int) -> int:
        return embedding_dim + self.classes

    @property
    def recipe(self) -> str:
        """Part of the space's version: vectors made with another λ are not comparable."""
        return f"example-v1-tags{self.tag_weight:g}"

    def propagate(self, tags: np.ndarray) -> np.ndarray:
        """(n, classes) probabilities where each class takes the max over its ontology subtree."""
        return np.maximum.reduceat(tags[:, self._flat], self._starts, axis=1)

    def __call__(self, embeddings: np.ndarray, tags: np.ndarray) -> np.ndarray:
        """(n, embedding_dim + classes) float32 example vectors of n segments."""
        e = _unit_rows(np.asarray(embeddings, dtype=np.float32))
        p = _unit_rows(self.propagate(np.asarray(tags, dtype=np.float32)))
        return np.hstack([np.sqrt(1 - self.tag_weight) * e, np.sqrt(self.tag_weight) * p]).astype(np.float32)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)
