"""First-stage candidate lists: each retriever ranks passages on its own."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from qa.embedding import Vectors
from qa.retrieval.bm25 import BM25Index
from qa.store.vectors import VectorStore


@dataclass(frozen=True, slots=True)
class Candidate:
    index: int  # row of the passage in the snapshot
    score: float
    rank: int  # 1-based


def dense_candidates(store: VectorStore, queries: Vectors, depth: int) -> list[list[Candidate]]:
    """Nearest passages by cosine similarity, one list per query vector."""
    scores, ids = store.search(queries, depth)
    out = []
    for row_scores, row_ids in zip(scores, ids, strict=True):
        ranked = [(int(i), float(s)) for i, s in zip(row_ids, row_scores, strict=True) if i >= 0]
        out.append([Candidate(i, s, r) for r, (i, s) in enumerate(ranked, 1)])
    return out


def top_scores(scores: npt.NDArray[np.float32], depth: int) -> list[Candidate]:
    """Best ``depth`` positive scores, ties broken by passage order (stable)."""
    positive = np.flatnonzero(scores > 0)
    if positive.size == 0:
        return []
    order = positive[np.lexsort((positive, -scores[positive]))][:depth]
    return [Candidate(int(i), float(scores[i]), r) for r, i in enumerate(order, 1)]


@dataclass(frozen=True, slots=True)
class ScoreStats:
    """Where a retriever's scores sit for one question, to put two retrievers on one scale."""

    mean: float
    std: float
    floor: float  # the score assumed for a passage outside the candidate list

    @classmethod
    def of(
        cls, scores: npt.NDArray[np.float32] | list[float], floor: float | None = None
    ) -> ScoreStats:
        values = np.asarray(scores, dtype=np.float64)
        if values.size == 0:
            return cls(0.0, 1.0, 0.0 if floor is None else floor)
        return cls(
            float(values.mean()),
            float(values.std()) or 1.0,
            float(values.min()) if floor is None else floor,
        )

    def z(self, score: float | None) -> float:
        return ((self.floor if score is None else score) - self.mean) / self.std


def bm25_ranked(bm25: BM25Index, question: str, depth: int) -> tuple[list[Candidate], ScoreStats]:
    """Passages sharing stemmed terms with the question, by BM25 score, plus the
    statistics of every passage's score (zeros included) for normalisation."""
    scores = bm25.scores(question)
    return top_scores(scores, depth), ScoreStats.of(scores, floor=0.0)
