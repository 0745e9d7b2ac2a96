"""One question's way through the ranking, as an ordered list of stages.

    candidates (each retriever) -> fusion -> [rerank] -> distinct -> quotes -> abstain

Every stage is a function from what the stages before it found (``Found``) to what
it finds, so a new stage (a reranker, another retriever's channel) is one function
and one line in ``RANKING`` or ``ANSWERING``. ``QAService`` runs the whole list for
an answer; a benchmark that needs only the order of passages (BEIR) runs
``RANKING``. What a question may see belongs to ``Query``: its scope (the allowed
documents) is read by the candidate stage, so every later stage sees only those.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from qa.config import FusionName, KeywordLevel, QuoteMethod, RetrieverName, Settings
from qa.embedding import Vectors
from qa.retrieval.bm25 import BM25Index, tokenize
from qa.retrieval.dedupe import distinct
from qa.retrieval.document_keywords import DocumentKeywords
from qa.retrieval.fusion import Fused, combine
from qa.retrieval.quotes import choose_quote
from qa.retrieval.rankers import (
    Candidates,
    ScoreStats,
    bm25_ranked,
    dense_candidates,
    ranked_scores,
)
from qa.store.vectors import VectorStore
from qa.types import DocumentScope, Explain, Hit, Passage


@dataclass(frozen=True, slots=True)
class SearchOptions:
    """Ranking knobs, taken from ``Settings`` (the one place their defaults live)."""

    retriever: RetrieverName
    fusion: FusionName
    keyword_level: KeywordLevel
    candidates: int
    rrf_k: int
    dense_weight: float
    bm25_weight: float
    quote_method: QuoteMethod
    quote_with_next: bool
    abstain_threshold: float

    @classmethod
    def from_settings(cls, settings: Settings) -> SearchOptions:
        return cls(
            retriever=settings.retriever,
            fusion=settings.fusion,
            keyword_level=settings.keyword_level,
            candidates=settings.candidates,
            rrf_k=settings.rrf_k,
            dense_weight=settings.dense_weight,
            bm25_weight=settings.bm25_weight,
            quote_method=settings.quote_method,
            quote_with_next=settings.quote_with_next,
            abstain_threshold=settings.abstain_threshold,
        )


class DocumentText(Protocol):
    @property
    def text(self) -> str: ...


class Collection(Protocol):
    """What the stages read from a loaded index (a ``Snapshot`` is one)."""

    @property
    def vectors(self) -> VectorStore: ...

    @property
    def bm25(self) -> BM25Index: ...

    @property
    def passages(self) -> Sequence[Passage]: ...

    @property
    def documents(self) -> Mapping[str, DocumentText]: ...

    def sentence_block(self, index: int) -> Vectors: ...


@dataclass(frozen=True, slots=True)
class Query:
    """One validated question, and everything a stage may consult about it."""

    collection: Collection
    text: str  # cleaned: what the model and BM25 see
    vector: Vectors
    k: int
    retriever: str
    options: SearchOptions
    include_low_confidence: bool = True
    depth: int = 0  # candidates per retriever; 0: the options' depth, at least 4 k
    scope: DocumentScope | None = None  # only these documents' passages; None: all
    # With keyword_level "document": BM25 over whole documents, read by the candidates stage.
    document_keywords: DocumentKeywords | None = None

    @property
    def candidate_depth(self) -> int:
        return self.depth or max(self.options.candidates, self.k * 4)


NO_CANDIDATES = Candidates(np.zeros(0, np.int64), np.zeros(0, np.float64))


@dataclass(frozen=True, slots=True)
class Found:
    """What the stages hand on: candidate lists, then one ranking, then the hits shown."""

    dense: Candidates = NO_CANDIDATES
    bm25: Candidates = NO_CANDIDATES
    bm25_stats: ScoreStats | None = None
    ranking: Sequence[Fused] = ()
    chosen: Sequence[tuple[Fused, Passage]] = ()
    hits: tuple[Hit, ...] = ()
    confidence: float = -1.0
    answered: bool = False


class Stage(Protocol):
    """A step of the pipeline: what was found so far in, what this step finds out."""

    def __call__(self, query: Query, found: Found) -> Found: ...


# -- the stages -------------------------------------------------------------------------


def candidates(query: Query, found: Found) -> Found:
    """Each retriever's own list: nearest vectors, and passages sharing stemmed terms."""
    collection, depth = query.collection, query.candidate_depth
    vector = query.vector[np.newaxis, :]
    dense = dense_candidates(collection.vectors, vector, depth, query.scope)[0]
    if query.document_keywords is not None:
        scores = query.document_keywords.passage_scores(query.text)
        bm25, bm25_stats = ranked_scores(scores, depth, query.scope)
    else:
        bm25, bm25_stats = bm25_ranked(collection.bm25, query.text, depth, query.scope)
    return dataclasses.replace(found, dense=dense, bm25=bm25, bm25_stats=bm25_stats)


def fuse(query: Query, found: Found) -> Found:
    """One ranking by the chosen retriever, keeping both views of each passage."""
    opts = query.options
    ranking = combine(
        found.dense,
        found.bm25,
        query.retriever,
        opts.fusion,
        opts.rrf_k,
        opts.dense_weight,
        opts.bm25_weight,
        found.bm25_stats,
    )
    return dataclasses.replace(found, ranking=ranking)


def keep_distinct(query: Query, found: Found) -> Found:
    """The top k, skipping passages mostly covered by a better one (read lazily)."""
    passages = query.collection.passages
    chosen = list(distinct(((f, passages[f.index]) for f in found.ranking), query.k))
    return dataclasses.replace(found, chosen=chosen)


def quote(query: Query, found: Found) -> Found:
    """A hit for each chosen passage, with the sentence(s) that best answer the question."""
    collection, opts = query.collection, query.options
    terms = set(tokenize([query.text])[0])
    hits = []
    for rank, (fused, passage) in enumerate(found.chosen, 1):
        quoted = choose_quote(
            passage,
            collection.documents[passage.doc_id].text,
            opts.quote_method,
            query.vector,
            terms,
            collection.sentence_block(fused.index),
            opts.quote_with_next,
        )
        explain = Explain(
            dense_score=fused.dense.score if fused.dense else None,
            dense_rank=fused.dense.rank if fused.dense else None,
            bm25_score=fused.bm25.score if fused.bm25 else None,
            bm25_rank=fused.bm25.rank if fused.bm25 else None,
            fused_score=fused.score,
        )
        hits.append(Hit(rank, fused.score, passage, quoted, explain))
    return dataclasses.replace(found, hits=tuple(hits))


def abstain(query: Query, found: Found) -> Found:
    """Answer only when the best dense cosine of any passage reaches the threshold.

    Abstention looks at the dense score alone: BM25 scores have no fixed scale,
    and cosine similarity separates the labelled unanswerable questions cleanly.
    """
    confidence = float(found.dense.scores[0]) if len(found.dense) else -1.0
    answered = confidence >= query.options.abstain_threshold and bool(found.hits)
    hits = found.hits if answered or query.include_low_confidence else ()
    return dataclasses.replace(found, hits=hits, confidence=confidence, answered=answered)


# The order of passages (a reranker goes last here), then what a reader is shown.
RANKING: tuple[Stage, ...] = (candidates, fuse)
ANSWERING: tuple[Stage, ...] = (keep_distinct, quote, abstain)
PIPELINE: tuple[Stage, ...] = (*RANKING, *ANSWERING)


def run(query: Query, stages: Sequence[Stage] = PIPELINE) -> Found:
    """Run ``stages`` in order on ``query``, each on what the ones before it found."""
    found = Found()
    for stage in stages:
        found = stage(query, found)
    return found
