"""Keep overlapping passages from filling the top k with the same text."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from qa.types import Passage

T = TypeVar("T")

# A passage is a near-duplicate when this share of it is already shown.
MAX_SHARED = 0.5


def overlap(a: Passage, b: Passage) -> int:
    if a.doc_id != b.doc_id:
        return 0
    return max(0, min(a.end, b.end) - max(a.start, b.start))


def distinct(ranked: Iterable[tuple[T, Passage]], limit: int) -> Iterator[tuple[T, Passage]]:
    """Walk a ranking best first, skipping passages mostly covered by ones already kept."""
    kept: list[Passage] = []
    for item, passage in ranked:
        if len(kept) >= limit:
            return
        length = max(1, passage.end - passage.start)
        if any(overlap(passage, other) / length > MAX_SHARED for other in kept):
            continue
        kept.append(passage)
        yield item, passage
