"""Fusing rankings from different query kinds (audio example, text) into one.

Reciprocal-rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009): a sound scores Σ wᵢ / (k + rankᵢ) over
the rankings it appears in (rank 1 = best). Cosine similarities and tag probabilities live on unrelated
scales, and a raw weighted sum would let whichever is larger dominate; ranks need no calibration. k = 60
is the paper's constant: it keeps the first few places of each list close to each other, so a sound
ranked well by both kinds beats one ranked first by a single kind.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

RRF_K = 60


def reciprocal_rank_fusion(
    rankings: Mapping[str, Sequence[int]], weights: Mapping[str, float] | None = None, k: int = RRF_K
) -> list[tuple[int, float]]:
    """(id, fused score) best first; ties keep the order in which ids were first seen."""
    scores: dict[int, float] = defaultdict(float)
    for name, ids in rankings.items():
        weight = 1.0 if weights is None else weights.get(name, 1.0)
        for rank, item in enumerate(ids, start=1):
            scores[item] += weight / (k + rank)
    return sorted(scores.items(), key=lambda kv: -kv[1])
