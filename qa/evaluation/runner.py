"""Evaluate retrievers on labelled questions through the real ``QAService``.

Everything the user would see is measured: the service's own ranking,
de-duplication, quotes and abstention. Rank metrics are computed with
``include_low_confidence=True`` so ranking quality is measured apart from the
abstention decision, which is recorded separately.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from qa.config import RETRIEVERS, Settings
from qa.embedding import Embedder
from qa.evaluation.labels import EvalQuestion, Labelled, locate
from qa.evaluation.metrics import (
    HIT_KS,
    first_answer_rank,
    mean,
    ndcg_at,
    percentile,
    reciprocal_rank,
)
from qa.indexing import memory_index
from qa.retrieval.pipeline import SearchOptions
from qa.service import QAService
from qa.store.snapshot import Snapshot
from qa.types import Answer, Document, Progress, no_progress

DEFAULT_K = 10


@dataclass(frozen=True, slots=True)
class TopHit:
    """What ranked first for a question, for failure reports."""

    passage_id: str
    doc_id: str
    label: str
    start: int
    end: int
    score: float
    text: str
    quote: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """One question asked of one retriever."""

    id: str
    question: str
    evidence: tuple[str, ...]
    retriever: str
    answerable: bool
    answered: bool  # the service's own confidence decision
    first_rank: int | None  # rank of the first answering passage
    reciprocal_rank: float
    ndcg: float
    quote_ok: bool | None  # None for unanswerable questions
    took_ms: float
    top: TopHit | None

    @property
    def failed(self) -> bool:
        """Answerable but not answered at rank 1, or unanswerable yet answered."""
        if self.answerable:
            return self.first_rank != 1
        return self.answered


@dataclass(frozen=True, slots=True)
class RetrieverMetrics:
    retriever: str
    answerable: int
    unanswerable: int
    hit_at: dict[int, float]
    mrr: float  # MRR@k
    ndcg: float  # nDCG@k
    quote_accuracy: float
    latency_mean_ms: float
    latency_p95_ms: float
    abstention_rate: float | None  # share of unanswerable questions with answered=false
    wrongly_abstained: int  # answerable questions with answered=false

    def flat(self) -> dict[str, Any]:
        """One flat record (``hit@1`` ...), convenient for tables and sweeps."""
        record = asdict(self)
        record.pop("hit_at")
        for k, value in self.hit_at.items():
            record[f"hit@{k}"] = value
        return record


@dataclass(slots=True)
class EvalResult:
    """Metrics per retriever, every outcome, and the configuration measured."""

    config: dict[str, Any]
    metrics: dict[str, RetrieverMetrics] = field(default_factory=dict)
    outcomes: dict[str, list[Outcome]] = field(default_factory=dict)

    def failures(self, retriever: str) -> list[Outcome]:
        return [o for o in self.outcomes.get(retriever, []) if o.failed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "metrics": {
                name: {**m.flat(), "hit_at": {str(k): v for k, v in m.hit_at.items()}}
                for name, m in self.metrics.items()
            },
            "questions": {
                name: [{**asdict(o), "failed": o.failed} for o in outcomes]
                for name, outcomes in self.outcomes.items()
            },
        }


def describe(service: QAService, k: int) -> dict[str, Any]:
    """The settings a result depends on, recorded next to it."""
    manifest = service.snapshot.manifest
    opts = service.options
    return {
        "model": manifest.model.model_id,
        "chunk_tokens": manifest.chunking.chunk_tokens,
        "overlap": manifest.chunking.overlap,
        "passages": manifest.passages,
        "documents": len(manifest.documents),
        "k": k,
        "candidates": opts.candidates,
        "fusion": opts.fusion,
        "rrf_k": opts.rrf_k,
        "dense_weight": opts.dense_weight,
        "bm25_weight": opts.bm25_weight,
        "quote_method": opts.quote_method,
        "abstain_threshold": opts.abstain_threshold,
    }


def score_answer(label: Labelled, answer: Answer, k: int) -> Outcome:
    """Turn one ``Answer`` into rank metrics against one question's labels."""
    ranking = [
        label.answered_by(h.passage.doc_id, h.passage.start, h.passage.end) for h in answer.hits
    ][:k]
    rank = first_answer_rank(ranking)
    quote_ok: bool | None = None
    if label.answerable:
        quote_ok = False
        if rank is not None:
            hit = answer.hits[rank - 1]
            quote_ok = label.overlaps(hit.passage.doc_id, hit.quote.start, hit.quote.end)
    top = None
    if answer.hits:
        h = answer.hits[0]
        top = TopHit(
            passage_id=h.passage.passage_id,
            doc_id=h.passage.doc_id,
            label=h.passage.label,
            start=h.passage.start,
            end=h.passage.end,
            score=h.score,
            text=h.passage.text,
            quote=h.quote.text,
        )
    return Outcome(
        id=label.id,
        question=label.question.question,
        evidence=label.question.evidence,
        retriever=answer.retriever,
        answerable=label.answerable,
        answered=answer.answered,
        first_rank=rank,
        reciprocal_rank=reciprocal_rank(ranking, k),
        ndcg=ndcg_at(ranking, len(label.occurrences), k),
        quote_ok=quote_ok,
        took_ms=answer.took_ms,
        top=top,
    )


def summarize(retriever: str, outcomes: Sequence[Outcome], k: int) -> RetrieverMetrics:
    answerable = [o for o in outcomes if o.answerable]
    unanswerable = [o for o in outcomes if not o.answerable]
    latencies = [o.took_ms for o in outcomes]
    return RetrieverMetrics(
        retriever=retriever,
        answerable=len(answerable),
        unanswerable=len(unanswerable),
        hit_at={
            j: mean(
                [1.0 if o.first_rank is not None and o.first_rank <= j else 0.0 for o in answerable]
            )
            for j in HIT_KS
            if j <= k
        },
        mrr=mean([o.reciprocal_rank for o in answerable]),
        ndcg=mean([o.ndcg for o in answerable]),
        quote_accuracy=mean([1.0 if o.quote_ok else 0.0 for o in answerable]),
        latency_mean_ms=mean(latencies),
        latency_p95_ms=percentile(latencies, 95),
        abstention_rate=(
            mean([0.0 if o.answered else 1.0 for o in unanswerable]) if unanswerable else None
        ),
        wrongly_abstained=sum(1 for o in answerable if not o.answered),
    )


def label_questions(
    service: QAService, questions: Sequence[EvalQuestion | Labelled]
) -> list[Labelled]:
    """Locate evidence in the service's documents (labels already located pass through)."""
    plain = [q for q in questions if isinstance(q, EvalQuestion)]
    texts = {doc_id: doc.text for doc_id, doc in service.snapshot.documents.items()}
    located = iter(locate(plain, texts))
    return [next(located) if isinstance(q, EvalQuestion) else q for q in questions]


def evaluate_questions(
    service: QAService,
    questions: Sequence[EvalQuestion | Labelled],
    retrievers: Sequence[str] = RETRIEVERS,
    k: int = DEFAULT_K,
    progress: Progress = no_progress,
) -> EvalResult:
    """Ask every question of every retriever and score the answers.

    Raises ``EvaluationError`` (naming the question) when an evidence string is in
    no document of the service's index.
    """
    labels = label_questions(service, questions)
    result = EvalResult(config=describe(service, k))
    total = len(labels) * len(retrievers)
    done = 0
    for name in retrievers:
        if labels:  # warm-up: lazy imports and caches should not count as latency
            service.ask(labels[0].question.question, k, name, include_low_confidence=True)
        outcomes = []
        for label in labels:
            answer = service.ask(label.question.question, k, name, include_low_confidence=True)
            outcomes.append(score_answer(label, answer, k))
            done += 1
            progress(f"asking ({name})", done, total)
        result.outcomes[name] = outcomes
        result.metrics[name] = summarize(name, outcomes, k)
    return result


def options_with(base: SearchOptions, **overrides: Any) -> SearchOptions:
    """``base`` with the given fields replaced; ``None`` values are ignored."""
    given = {key: value for key, value in overrides.items() if value is not None}
    return replace(base, **given) if given else base


def variant_service(
    settings: Settings,
    embedder: Embedder,
    documents: list[Document],
    chunk_tokens: int | None = None,
    overlap: int | None = None,
    options: SearchOptions | None = None,
    snapshot: Snapshot | None = None,
    progress: Progress = no_progress,
) -> QAService:
    """A service over the index ``qa index`` would build with other chunking, held in
    memory: the saved index is never touched, so variants can be compared freely."""
    chosen = settings.with_overrides(
        **{
            key: value
            for key, value in (("chunk_tokens", chunk_tokens), ("overlap", overlap))
            if value is not None
        }
    )
    if snapshot is None:
        snapshot = memory_index(
            documents, chosen.chunking, embedder, chosen.batch_size, progress=progress
        )
    return QAService(chosen, embedder, snapshot, options or SearchOptions.from_settings(chosen))
