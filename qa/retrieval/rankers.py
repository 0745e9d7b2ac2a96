"""First-stage candidate lists: each retriever ranks passages on its own."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, overload

import numpy as np
import numpy.typing as npt

from qa.embedding import Vectors
from qa.retrieval.bm25 import BM25Index
from qa.store.vectors import VectorStore
from qa.types import DocumentScope


@dataclass(frozen=True, slots=True)
class Candidate:
    index: int  # row of the passage in the snapshot
    score: float
    rank: int  # 1-based


T = TypeVar("T")


class LazySequence(Sequence[T]):
    """A read-only sequence whose items are built when they are read (``_at``)."""

    @abstractmethod
    def _at(self, position: int) -> T: ...

    @overload
    def __getitem__(self, item: int) -> T: ...

    @overload
    def __getitem__(self, item: slice) -> list[T]: ...

    def __getitem__(self, item: int | slice) -> T | list[T]:
        if isinstance(item, slice):
            return [self._at(i) for i in range(*item.indices(len(self)))]
        if item < 0:
            item += len(self)
        if not 0 <= item < len(self):
            raise IndexError(item)
        return self._at(item)


class Candidates(LazySequence[Candidate]):
    """One retriever's list, best first, kept as arrays; a ``Candidate`` is built when read.

    Up to a thousand candidates per retriever are scored for every question, and
    only the few that are shown need an object.
    """

    def __init__(
        self,
        rows: npt.NDArray[np.int64],
        scores: npt.NDArray[np.float64],
        ranks: npt.NDArray[np.int64] | None = None,
    ) -> None:
        self.rows = rows
        self.scores = scores
        self.ranks = np.arange(1, len(rows) + 1, dtype=np.int64) if ranks is None else ranks

    @classmethod
    def of(cls, candidates: Sequence[Candidate]) -> Candidates:
        if isinstance(candidates, Candidates):
            return candidates
        count = len(candidates)
        return cls(
            np.fromiter((c.index for c in candidates), np.int64, count),
            np.fromiter((c.score for c in candidates), np.float64, count),
            np.fromiter((c.rank for c in candidates), np.int64, count),
        )

    def __len__(self) -> int:
        return len(self.rows)

    def _at(self, position: int) -> Candidate:
        return Candidate(
            int(self.rows[position]), float(self.scores[position]), int(self.ranks[position])
        )


def dense_candidates(
    store: VectorStore, queries: Vectors, depth: int, scope: DocumentScope | None = None
) -> list[Candidates]:
    """Nearest passages by cosine similarity, one list per query vector (within ``scope``)."""
    scores, ids = store.search(queries, depth, scope)
    out = []
    for row_scores, row_ids in zip(scores, ids, strict=True):
        found = row_ids >= 0
        out.append(
            Candidates(row_ids[found].astype(np.int64), row_scores[found].astype(np.float64))
        )
    return out


def top_scores(scores: npt.NDArray[np.float32], depth: int) -> Candidates:
    """Best ``depth`` positive scores, ties broken by passage order (stable)."""
    positive = np.flatnonzero(scores > 0)
    order = positive[np.lexsort((positive, -scores[positive]))][:depth]
    return Candidates(order.astype(np.int64), scores[order].astype(np.float64))


@dataclass(frozen=True, slots=True)
class ScoreStats:
    """Where a retriever's scores sit for one question, to put two retrievers on one scale."""

    mean: float
    std: float
    floor: float  # the score assumed for a passage outside the candidate list

    @classmethod
    def of(
        cls, scores: npt.NDArray[np.floating[Any]] | list[float], floor: float | None = None
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


def bm25_ranked(
    bm25: BM25Index, question: str, depth: int, scope: DocumentScope | None = None
) -> tuple[Candidates, ScoreStats]:
    """Passages sharing stemmed terms with the question, by BM25 score, plus the
    statistics of every passage's score (zeros included) for normalisation.

    With a ``scope``, passages outside it score zero and the statistics describe
    the scoped passages alone, so fusion puts the two retrievers on the scope's scale.
    """
    return ranked_scores(bm25.scores(question), depth, scope)


def ranked_scores(
    scores: npt.NDArray[np.float32], depth: int, scope: DocumentScope | None = None
) -> tuple[Candidates, ScoreStats]:
    """A keyword channel's candidates and score statistics from every passage's score."""
    if scope is None:
        return top_scores(scores, depth), ScoreStats.of(scores, floor=0.0)
    scoped = np.zeros_like(scores)
    scoped[scope.rows] = scores[scope.rows]
    return top_scores(scoped, depth), ScoreStats.of(scores[scope.rows], floor=0.0)
