"""Combine the dense and BM25 candidate lists into one ranking."""

from __future__ import annotations

from dataclasses import dataclass

from qa.retrieval.rankers import Candidate


@dataclass(frozen=True, slots=True)
class Fused:
    index: int
    score: float
    dense: Candidate | None
    bm25: Candidate | None


def reciprocal_rank_fusion(
    dense: list[Candidate],
    bm25: list[Candidate],
    k: int = 60,
    dense_weight: float = 1.0,
    bm25_weight: float = 1.0,
) -> list[Fused]:
    """Weighted RRF: sum of ``weight / (k + rank)``; robust to the two score scales."""
    by_dense = {c.index: c for c in dense}
    by_bm25 = {c.index: c for c in bm25}
    fused = []
    for index in by_dense.keys() | by_bm25.keys():
        d, b = by_dense.get(index), by_bm25.get(index)
        score = (dense_weight / (k + d.rank) if d else 0.0) + (
            bm25_weight / (k + b.rank) if b else 0.0
        )
        fused.append(Fused(index, score, d, b))
    fused.sort(key=lambda f: (-f.score, f.index))
    return fused


def combine(
    dense: list[Candidate],
    bm25: list[Candidate],
    retriever: str,
    rrf_k: int = 60,
    dense_weight: float = 1.0,
    bm25_weight: float = 1.0,
) -> list[Fused]:
    """Rank by the chosen retriever while keeping both views of every passage for ``explain``."""
    if retriever == "hybrid":
        return reciprocal_rank_fusion(dense, bm25, rrf_k, dense_weight, bm25_weight)
    by_dense = {c.index: c for c in dense}
    by_bm25 = {c.index: c for c in bm25}
    lead = dense if retriever == "dense" else bm25
    return [Fused(c.index, c.score, by_dense.get(c.index), by_bm25.get(c.index)) for c in lead]
