"""Grid search over chunking and fusion settings on the labelled questions.

One model is loaded once; each chunking is built in memory once, by the pipeline
``qa index`` runs (and kept in ``snapshots`` so a caller can sweep again cheaply);
fusion settings only change the ``SearchOptions`` of a service over the same snapshot.
The saved index is never touched.

From Python::

    from qa.indexing.seeds import load_documents
    from qa.evaluation import load_questions, sweep, SweepGrid, best
    from qa.service import load_embedder

    settings = Settings()
    documents = load_documents(settings.seeds_dir)
    grid = SweepGrid(chunk_tokens=(96, 128), overlap=(0, 1), fusion=("blend", "rrf"),
                     rrf_k=(20, 60), weights=((0.6, 0.4), (0.5, 0.5)),
                     options=({}, {"candidates": 100}))
    rows = sweep(documents, load_embedder(settings), load_questions(settings.questions_path),
                 grid, settings)
    best(rows, "ndcg", "hybrid").flat()
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from qa.config import RETRIEVERS, ChunkSettings, Settings
from qa.embedding import Embedder
from qa.evaluation.labels import EvalQuestion, Labelled, locate
from qa.evaluation.runner import (
    DEFAULT_K,
    RetrieverMetrics,
    evaluate_questions,
    options_with,
    variant_service,
)
from qa.indexing import memory_index
from qa.retrieval.pipeline import SearchOptions
from qa.store.snapshot import Snapshot
from qa.types import Document, Progress, no_progress


@dataclass(frozen=True, slots=True)
class SweepGrid:
    """The values to try. Fusion settings apply to the hybrid retriever only."""

    chunk_tokens: tuple[int, ...] = (64, 96, 128, 192, 256)
    overlap: tuple[int, ...] = (0, 1, 2)
    fusion: tuple[str, ...] = ("blend",)  # "blend" (z-scores) and/or "rrf"
    rrf_k: tuple[int, ...] = (60,)  # RRF only
    weights: tuple[tuple[float, float], ...] = ((0.6, 0.4),)  # (dense, bm25)
    retrievers: tuple[str, ...] = RETRIEVERS
    # Other ``SearchOptions`` overrides to try, for every retriever (e.g. {"candidates": 100}).
    options: tuple[dict[str, Any], ...] = ({},)

    def chunkings(self) -> list[tuple[int, int]]:
        return list(itertools.product(self.chunk_tokens, self.overlap))

    def fusions(self) -> list[tuple[str, int | None, float, float]]:
        """(fusion, rrf_k, dense_weight, bm25_weight); rrf_k only varies for RRF."""
        out: list[tuple[str, int | None, float, float]] = []
        for name in self.fusion:
            ks: tuple[int | None, ...] = self.rrf_k if name == "rrf" else (None,)
            out.extend((name, k, d, b) for k in ks for d, b in self.weights)
        return out

    @property
    def size(self) -> int:
        """How many rows the sweep will produce."""
        plain = sum(1 for r in self.retrievers if r != "hybrid")
        hybrid = len(self.fusions()) if "hybrid" in self.retrievers else 0
        return len(self.chunkings()) * len(self.options) * (plain + hybrid)


@dataclass(frozen=True, slots=True)
class SweepRow:
    chunk_tokens: int
    overlap: int
    retriever: str
    fusion: str | None  # None: not a fused ranking
    rrf_k: int | None  # None: not an RRF ranking
    dense_weight: float | None
    bm25_weight: float | None
    passages: int
    metrics: RetrieverMetrics
    options: dict[str, Any] = field(default_factory=dict)  # extra SearchOptions overrides

    def flat(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            **self.options,
            "chunk_tokens": self.chunk_tokens,
            "overlap": self.overlap,
            "retriever": self.retriever,
            "fusion": self.fusion,
            "rrf_k": self.rrf_k,
            "dense_weight": self.dense_weight,
            "bm25_weight": self.bm25_weight,
            "passages": self.passages,
        }
        metrics = self.metrics.flat()
        metrics.pop("retriever")
        return {**record, **metrics}


SnapshotCache = dict[tuple[int, int, str], Snapshot]


def sweep(
    documents: list[Document],
    embedder: Embedder,
    questions: Sequence[EvalQuestion | Labelled],
    grid: SweepGrid | None = None,
    settings: Settings | None = None,
    k: int = DEFAULT_K,
    snapshots: SnapshotCache | None = None,
    progress: Progress = no_progress,
) -> list[SweepRow]:
    """Evaluate every chunking × fusion setting of ``grid``; one row per retriever variant."""
    grid = grid or SweepGrid()
    settings = settings or Settings()
    snapshots = {} if snapshots is None else snapshots
    texts = {d.doc_id: d.text for d in documents}
    plain = [q for q in questions if isinstance(q, EvalQuestion)]
    located = iter(locate(plain, texts))  # fails before any embedding work
    labels = [next(located) if isinstance(q, EvalQuestion) else q for q in questions]
    base = SearchOptions.from_settings(settings)
    rows: list[SweepRow] = []
    chunkings = grid.chunkings()
    for number, (chunk_tokens, overlap) in enumerate(chunkings, 1):
        chunking = ChunkSettings(chunk_tokens, overlap, settings.encoding)
        key = (chunk_tokens, overlap, settings.encoding)
        if key not in snapshots:
            snapshots[key] = memory_index(documents, chunking, embedder, settings.batch_size)
        snapshot = snapshots[key]
        service = variant_service(
            settings, embedder, documents, chunk_tokens, overlap, base, snapshot=snapshot
        )
        plain_names = [r for r in grid.retrievers if r != "hybrid"]
        for extra in grid.options:
            start = options_with(base, **extra)
            service.options = start
            if plain_names:
                result = evaluate_questions(service, labels, plain_names, k)
                rows.extend(
                    SweepRow(
                        chunk_tokens,
                        overlap,
                        name,
                        None,
                        None,
                        None,
                        None,
                        len(snapshot.passages),
                        result.metrics[name],
                        dict(extra),
                    )
                    for name in plain_names
                )
            if "hybrid" not in grid.retrievers:
                continue
            for fusion, rrf_k, dense_weight, bm25_weight in grid.fusions():
                service.options = options_with(
                    start,
                    fusion=fusion,
                    rrf_k=rrf_k,
                    dense_weight=dense_weight,
                    bm25_weight=bm25_weight,
                )
                result = evaluate_questions(service, labels, ["hybrid"], k)
                rows.append(
                    SweepRow(
                        chunk_tokens,
                        overlap,
                        "hybrid",
                        fusion,
                        rrf_k,
                        dense_weight,
                        bm25_weight,
                        len(snapshot.passages),
                        result.metrics["hybrid"],
                        dict(extra),
                    )
                )
        progress("sweeping chunkings", number, len(chunkings))
    return rows


def best(rows: Sequence[SweepRow], metric: str = "ndcg", retriever: str | None = None) -> SweepRow:
    """The row with the highest ``metric`` (a key of ``RetrieverMetrics.flat()``)."""
    pool = [r for r in rows if retriever is None or r.retriever == retriever]
    if not pool:
        raise ValueError(f"no sweep rows for retriever {retriever!r}")
    return max(pool, key=lambda r: float(r.metrics.flat()[metric]))
