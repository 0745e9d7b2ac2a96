"""Combine the dense and BM25 candidate lists into one ranking.

Scores are computed for every candidate at once with numpy, and a ``Fused``
record is only built for the places a caller reads: a question shows five
passages out of up to two thousand candidates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from qa.retrieval.rankers import Candidate, Candidates, LazySequence, ScoreStats

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Fused:
    index: int
    score: float
    dense: Candidate | None
    bm25: Candidate | None


class _Side:
    """One retriever's candidates as arrays, and each passage's own candidate on demand."""

    def __init__(self, candidates: Sequence[Candidate]) -> None:
        self.candidates = Candidates.of(candidates)
        self.rows = self.candidates.rows
        self.scores = self.candidates.scores
        self.ranks = self.candidates.ranks.astype(np.float64)
        self._by_row = np.argsort(self.rows, kind="stable")
        self._sorted_rows = self.rows[self._by_row]

    def spread(self, universe: npt.NDArray[np.int64], values: Floats, missing: float) -> Floats:
        """``values`` (one per candidate) laid out over ``universe``; ``missing`` elsewhere."""
        out = np.full(universe.size, missing, dtype=np.float64)
        out[np.searchsorted(universe, self.rows)] = values
        return out

    def find(self, row: int) -> Candidate | None:
        at = int(np.searchsorted(self._sorted_rows, row))
        if at < len(self._sorted_rows) and self._sorted_rows[at] == row:
            return self.candidates[int(self._by_row[at])]
        return None


class Ranking(LazySequence[Fused]):
    """Passages best first; item ``i`` is built when it is read."""

    def __init__(
        self, rows: npt.NDArray[np.int64], scores: Floats, dense: _Side, bm25: _Side
    ) -> None:
        self._rows = rows
        self._scores = scores
        self._dense = dense
        self._bm25 = bm25

    def __len__(self) -> int:
        return len(self._rows)

    def _at(self, position: int) -> Fused:
        row = int(self._rows[position])
        return Fused(
            row, float(self._scores[position]), self._dense.find(row), self._bm25.find(row)
        )


def _fuse(
    dense: Sequence[Candidate],
    bm25: Sequence[Candidate],
    score: Callable[[_Side, _Side, npt.NDArray[np.int64]], Floats],
) -> Ranking:
    """Score every passage found by either retriever; best first, ties by passage order."""
    dense_side, bm25_side = _Side(dense), _Side(bm25)
    universe = np.union1d(dense_side.rows, bm25_side.rows)
    scores = score(dense_side, bm25_side, universe)
    order = np.lexsort((universe, -scores))
    return Ranking(universe[order], scores[order], dense_side, bm25_side)


def reciprocal_rank_fusion(
    dense: Sequence[Candidate],
    bm25: Sequence[Candidate],
    k: int = 60,
    dense_weight: float = 1.0,
    bm25_weight: float = 1.0,
) -> Ranking:
    """Weighted RRF: sum of ``weight / (k + rank)``; robust to the two score scales."""

    def score(d: _Side, b: _Side, universe: npt.NDArray[np.int64]) -> Floats:
        return d.spread(universe, dense_weight / (k + d.ranks), 0.0) + b.spread(
            universe, bm25_weight / (k + b.ranks), 0.0
        )

    return _fuse(dense, bm25, score)


def zscore_blend(
    dense: Sequence[Candidate],
    bm25: Sequence[Candidate],
    dense_stats: ScoreStats,
    bm25_stats: ScoreStats,
    dense_weight: float = 0.6,
    bm25_weight: float = 0.4,
) -> Ranking:
    """Convex blend of z-normalised scores.

    Unlike RRF it keeps how far ahead a passage is, not just its place, which
    measured better on the labelled questions (see README, "Retrieval").
    A passage missing from one list takes that list's floor score.
    """
    total = (dense_weight + bm25_weight) or 1.0

    def z(side: _Side, stats: ScoreStats, universe: npt.NDArray[np.int64]) -> Floats:
        return side.spread(universe, (side.scores - stats.mean) / stats.std, stats.z(None))

    def score(d: _Side, b: _Side, universe: npt.NDArray[np.int64]) -> Floats:
        return (
            dense_weight * z(d, dense_stats, universe) + bm25_weight * z(b, bm25_stats, universe)
        ) / total

    return _fuse(dense, bm25, score)


def combine(
    dense: Sequence[Candidate],
    bm25: Sequence[Candidate],
    retriever: str,
    fusion: str = "blend",
    rrf_k: int = 60,
    dense_weight: float = 0.6,
    bm25_weight: float = 0.4,
    bm25_stats: ScoreStats | None = None,
) -> Ranking:
    """Rank by the chosen retriever while keeping both views of every passage for ``explain``."""
    dense, bm25 = Candidates.of(dense), Candidates.of(bm25)  # a list is converted once, here
    if retriever == "hybrid" and fusion == "rrf":
        return reciprocal_rank_fusion(dense, bm25, rrf_k, dense_weight, bm25_weight)
    if retriever == "hybrid":
        dense_stats = ScoreStats.of(dense.scores)
        if bm25_stats is None:
            bm25_stats = ScoreStats.of(bm25.scores, floor=0.0)
        return zscore_blend(dense, bm25, dense_stats, bm25_stats, dense_weight, bm25_weight)
    dense_side, bm25_side = _Side(dense), _Side(bm25)
    lead = dense_side if retriever == "dense" else bm25_side
    return Ranking(lead.rows, lead.scores, dense_side, bm25_side)
