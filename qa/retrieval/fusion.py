"""Combine the dense and BM25 candidate lists into one ranking."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from qa.retrieval.rankers import Candidate, ScoreStats


@dataclass(frozen=True, slots=True)
class Fused:
    index: int
    score: float
    dense: Candidate | None
    bm25: Candidate | None


Pair = Callable[[Candidate | None, Candidate | None], float]


def _fuse(dense: list[Candidate], bm25: list[Candidate], score: Pair) -> list[Fused]:
    """Score every passage found by either retriever; best first, ties by passage order."""
    by_dense = {c.index: c for c in dense}
    by_bm25 = {c.index: c for c in bm25}
    fused = []
    for index in by_dense.keys() | by_bm25.keys():
        d, b = by_dense.get(index), by_bm25.get(index)
        fused.append(Fused(index, score(d, b), d, b))
    fused.sort(key=lambda f: (-f.score, f.index))
    return fused


def reciprocal_rank_fusion(
    dense: list[Candidate],
    bm25: list[Candidate],
    k: int = 60,
    dense_weight: float = 1.0,
    bm25_weight: float = 1.0,
) -> list[Fused]:
    """Weighted RRF: sum of ``weight / (k + rank)``; robust to the two score scales."""

    def score(d: Candidate | None, b: Candidate | None) -> float:
        return (dense_weight / (k + d.rank) if d else 0.0) + (
            bm25_weight / (k + b.rank) if b else 0.0
        )

    return _fuse(dense, bm25, score)


def zscore_blend(
    dense: list[Candidate],
    bm25: list[Candidate],
    dense_stats: ScoreStats,
    bm25_stats: ScoreStats,
    dense_weight: float = 0.6,
    bm25_weight: float = 0.4,
) -> list[Fused]:
    """Convex blend of z-normalised scores.

    Unlike RRF it keeps how far ahead a passage is, not just its place, which
    measured better on the labelled questions (see README, "Retrieval").
    A passage missing from one list takes that list's floor score.
    """
    total = (dense_weight + bm25_weight) or 1.0

    def score(d: Candidate | None, b: Candidate | None) -> float:
        return (
            dense_weight * dense_stats.z(d.score if d else None)
            + bm25_weight * bm25_stats.z(b.score if b else None)
        ) / total

    return _fuse(dense, bm25, score)


def combine(
    dense: list[Candidate],
    bm25: list[Candidate],
    retriever: str,
    fusion: str = "blend",
    rrf_k: int = 60,
    dense_weight: float = 0.6,
    bm25_weight: float = 0.4,
    bm25_stats: ScoreStats | None = None,
) -> list[Fused]:
    """Rank by the chosen retriever while keeping both views of every passage for ``explain``."""
    if retriever == "hybrid" and fusion == "rrf":
        return reciprocal_rank_fusion(dense, bm25, rrf_k, dense_weight, bm25_weight)
    if retriever == "hybrid":
        dense_stats = ScoreStats.of([c.score for c in dense])
        if bm25_stats is None:
            bm25_stats = ScoreStats.of([c.score for c in bm25], floor=0.0)
        return zscore_blend(dense, bm25, dense_stats, bm25_stats, dense_weight, bm25_weight)
    by_dense = {c.index: c for c in dense}
    by_bm25 = {c.index: c for c in bm25}
    lead = dense if retriever == "dense" else bm25
    return [Fused(c.index, c.score, by_dense.get(c.index), by_bm25.get(c.index)) for c in lead]
