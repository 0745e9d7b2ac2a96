"""A bounded LRU cache of answers, emptied whenever the served index changes.

Repeated questions are common (the same FAQ asked by many users); answering them
from memory skips the model, BM25 and quote selection. An answer is only valid
for the snapshot it was computed from, so the cache remembers which snapshot
filled it and empties itself the first time it sees another one.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from qa.store.snapshot import Snapshot
from qa.types import Answer

CacheKey = tuple[str, int, str, bool, tuple[str, ...]]


def normalize(question: str) -> str:
    """Whitespace-insensitive form of a question.

    Case is kept: a different model may be cased, and the answer echoes the text.
    """
    return " ".join(question.split())


def cache_key(
    question: str,
    k: int,
    retriever: str,
    include_low_confidence: bool,
    documents: tuple[str, ...] = (),
) -> CacheKey:
    """``documents``: the sorted ids of a scoped question; empty for the whole collection."""
    return (normalize(question), k, retriever, include_low_confidence, documents)


@dataclass(frozen=True, slots=True)
class CacheStats:
    hits: int
    misses: int
    size: int
    capacity: int
    invalidations: int


class AnswerCache:
    """Thread-safe LRU keyed by (question, k, retriever, include_low_confidence, documents).

    ``capacity == 0`` disables it. Invalidation is by snapshot identity, so a
    swapped index (new ``Snapshot`` object) can never be answered from old entries.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[CacheKey, Answer] = OrderedDict()
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.invalidations = 0

    def _check(self, snapshot: Snapshot) -> None:
        """Empty the cache if it was filled from another snapshot (lock held)."""
        if self._snapshot is not snapshot:
            if self._entries:
                self.invalidations += 1
            self._entries.clear()
            self._snapshot = snapshot

    def get(self, snapshot: Snapshot, key: CacheKey) -> Answer | None:
        """The cached answer for ``key`` under ``snapshot``, or ``None``."""
        if self.capacity <= 0:
            return None
        started = time.perf_counter()
        with self._lock:
            self._check(snapshot)
            answer = self._entries.get(key)
            if answer is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
        took_ms = (time.perf_counter() - started) * 1000
        return dataclasses.replace(answer, took_ms=took_ms)

    def put(self, snapshot: Snapshot, key: CacheKey, answer: Answer) -> None:
        if self.capacity <= 0:
            return
        with self._lock:
            self._check(snapshot)
            self._entries[key] = answer
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            if self._entries:
                self.invalidations += 1
            self._entries.clear()
            self._snapshot = None

    def __len__(self) -> int:
        return len(self._entries)

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(
                self.hits, self.misses, len(self._entries), self.capacity, self.invalidations
            )
