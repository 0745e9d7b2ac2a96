"""Rank metrics over one question's ranking, and their averages.

A ranking is a sequence, best first, of the sets of evidence indexes each
returned passage answers (an empty set: the passage answers nothing). Ties in
score have already been broken by the retriever, so the order given is the order
the user sees. Two passages answering the same evidence string are duplicates:
only the first earns credit in nDCG (Hit@k and MRR only look at the first anyway).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# For each rank, which evidence strings (by index) the passage there answers.
Relevance = Sequence[frozenset[int]]
HIT_KS: tuple[int, ...] = (1, 3, 5, 10)


def first_answer_rank(ranking: Relevance) -> int | None:
    """1-based rank of the first passage that answers, or None."""
    for rank, answered in enumerate(ranking, 1):
        if answered:
            return rank
    return None


def hit_at(ranking: Relevance, k: int) -> float:
    """1.0 when an answering passage is in the top ``k``."""
    rank = first_answer_rank(ranking)
    return 1.0 if rank is not None and rank <= k else 0.0


def reciprocal_rank(ranking: Relevance, k: int = 10) -> float:
    """1/rank of the first answering passage within the top ``k``; 0 if none."""
    rank = first_answer_rank(ranking)
    return 1.0 / rank if rank is not None and rank <= k else 0.0


def gains(ranking: Relevance) -> list[float]:
    """Binary gain per rank: 1 only for a passage answering a not-yet-answered evidence."""
    seen: set[int] = set()
    out = []
    for answered in ranking:
        fresh = answered - seen
        out.append(1.0 if fresh else 0.0)
        seen |= answered
    return out


def dcg(values: Sequence[float]) -> float:
    return sum(g / math.log2(rank + 1) for rank, g in enumerate(values, 1))


def ndcg_at(ranking: Relevance, relevant: int, k: int = 10) -> float:
    """nDCG@k with binary, de-duplicated gains; ``relevant`` = evidence strings to find.

    The ideal ranking puts one passage per evidence string at the top.
    """
    if relevant <= 0:
        return 0.0
    ideal = dcg([1.0] * min(relevant, k))
    return dcg(gains(ranking[:k])) / ideal


def mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """``q``-th percentile (linear interpolation, as numpy); 0 for no values."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else 0.0
