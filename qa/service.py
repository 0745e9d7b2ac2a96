"""The application object: an index and a model loaded once, asked many questions.

The CLI and the HTTP API both call ``QAService``; neither ranks anything itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import cached_property

import numpy as np
import numpy.typing as npt

from qa.config import RETRIEVERS, Settings
from qa.embedding import Embedder, SentenceTransformerEmbedder, Vectors
from qa.errors import InvalidQuestionError, InvalidSpanError, NotFoundError
from qa.indexing import open_index
from qa.retrieval import pipeline
from qa.retrieval.document_keywords import DocumentKeywords
from qa.retrieval.fusion import Fused
from qa.retrieval.pipeline import Found, Query, SearchOptions, Stage
from qa.store.snapshot import DocumentInfo, Snapshot
from qa.types import Answer, DocumentScope, Hit, Passage, Progress


def load_embedder(settings: Settings) -> Embedder:
    if settings.encoder_backend == "onnx":  # optional: int8 ONNX Runtime, see qa.embedding_onnx
        from qa.embedding_onnx import OnnxEmbedder

        return OnnxEmbedder(settings.model, settings.torch_threads, settings.cache_dir)
    return SentenceTransformerEmbedder(settings.model, settings.torch_threads)


class QAService:
    """Answers questions from one snapshot; swap the snapshot to serve a new index."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        snapshot: Snapshot,
        options: SearchOptions | None = None,
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.snapshot = snapshot
        self.options = options or SearchOptions.from_settings(settings)
        self._closed = False

    @classmethod
    def open(
        cls,
        settings: Settings,
        embedder: Embedder | None = None,
        rebuild: bool | None = None,
        notice: Callable[[str], None] | None = None,
        progress: Progress | None = None,
    ) -> QAService:
        embedder = embedder or load_embedder(settings)
        allow = settings.auto_rebuild if rebuild is None else rebuild
        kwargs: dict[str, object] = {}
        if notice is not None:
            kwargs["notice"] = notice
        if progress is not None:
            kwargs["progress"] = progress
        snapshot = open_index(settings, embedder, allow, **kwargs)  # type: ignore[arg-type]
        return cls(settings, embedder, snapshot)

    # -- validation ---------------------------------------------------------------

    def validate(self, question: str, k: int, retriever: str) -> str:
        cleaned = question.strip()
        if not cleaned:
            raise InvalidQuestionError("question must not be empty")
        try:  # JSON can carry a lone surrogate ("\\ud800"); the tokenizer cannot take one
            cleaned.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidQuestionError(
                f"question must be valid Unicode text: lone surrogate at position {exc.start}"
            ) from None
        if not 1 <= k <= self.settings.max_k:
            raise InvalidQuestionError(f"k must be between 1 and {self.settings.max_k}, got {k}")
        if retriever not in RETRIEVERS:
            raise InvalidQuestionError(
                f"retriever must be one of {', '.join(RETRIEVERS)}, got {retriever!r}"
            )
        return cleaned

    def scope(self, documents: Sequence[str] | None) -> DocumentScope | None:
        """The passages of ``documents`` (``None``: the whole collection).

        An unknown id is an ``InvalidQuestionError`` naming it, so a typo never
        silently widens or empties the search.
        """
        if documents is None:
            return None
        if isinstance(documents, str):  # a lone id would otherwise be read letter by letter
            documents = [documents]
        if not documents:
            raise InvalidQuestionError("documents must list at least one document id")
        rows = self._rows_by_document
        unknown = [d for d in dict.fromkeys(documents) if d not in rows]
        if unknown:
            names = ", ".join(repr(d) for d in unknown)
            raise InvalidQuestionError(
                f"unknown document id{'s' if len(unknown) > 1 else ''} {names}"
            )
        doc_ids = tuple(sorted(set(documents)))
        found = np.sort(np.concatenate([rows[d] for d in doc_ids]))
        return DocumentScope(doc_ids, found)

    @cached_property
    def _rows_by_document(self) -> dict[str, npt.NDArray[np.int64]]:
        """Snapshot rows of each document's passages (a service serves one snapshot)."""
        snap = self.snapshot
        owners = np.array([p.doc_id for p in snap.passages], dtype=object)
        return {d: np.flatnonzero(owners == d).astype(np.int64) for d in snap.documents}

    # -- queries ------------------------------------------------------------------

    def encode_question(self, question: str) -> Vectors:
        vector: Vectors = self.embedder.encode([question])[0]
        return vector

    def query(
        self,
        question: str,
        vector: Vectors,
        k: int,
        retriever: str,
        include_low_confidence: bool = True,
        depth: int = 0,
        scope: DocumentScope | None = None,
    ) -> Query:
        """What the ranking stages see of one (already validated) question."""
        return Query(
            self.snapshot,
            question,
            vector,
            k,
            retriever,
            self.options,
            include_low_confidence,
            depth,
            scope,
            self._document_keywords,
        )

    @cached_property
    def _document_keywords(self) -> DocumentKeywords | None:
        """The whole-document keyword index, when chosen; built on first use, since it
        needs only the documents' text (a few seconds for thousands of abstracts)."""
        if self.options.keyword_level != "document":
            return None
        return DocumentKeywords.build(self.snapshot.documents, self.snapshot.passages)

    def ask(
        self,
        question: str,
        k: int | None = None,
        retriever: str | None = None,
        include_low_confidence: bool = False,
        question_vector: Vectors | None = None,
        documents: Sequence[str] | None = None,
    ) -> Answer:
        """Cited passages for ``question``, only from ``documents`` when given."""
        started = time.perf_counter()
        k = self.settings.default_k if k is None else k
        name = retriever or self.options.retriever
        cleaned = self.validate(question, k, name)
        scope = self.scope(documents)
        vector = self.encode_question(cleaned) if question_vector is None else question_vector
        found = self.run(self.query(cleaned, vector, k, name, include_low_confidence, scope=scope))
        return Answer(
            question=question,
            answered=found.answered,
            hits=found.hits,
            took_ms=(time.perf_counter() - started) * 1000,
            retriever=name,
            confidence=found.confidence,
        )

    def run(self, query: Query, stages: Sequence[Stage] = pipeline.PIPELINE) -> Found:
        """The ranking pipeline (``qa.retrieval.pipeline``): every question goes through it."""
        return pipeline.run(query, stages)

    def search(
        self,
        question: str,
        vector: Vectors,
        k: int,
        retriever: str,
        scope: DocumentScope | None = None,
    ) -> tuple[list[Hit], float]:
        """Ranked, de-duplicated hits with quotes, and the best dense cosine of any passage
        (hits are kept below the abstention threshold). With a ``scope`` both retrievers
        see only its passages, so the confidence is that of the best passage in scope."""
        found = self.run(self.query(question, vector, k, retriever, scope=scope))
        return list(found.hits), found.confidence

    def rank(self, question: str, vector: Vectors, depth: int, retriever: str) -> Sequence[Fused]:
        """Every candidate passage in the service's order, without quotes or de-duplication:
        for a benchmark that scores the ranking itself (BEIR). ``depth`` per retriever."""
        found = self.run(
            self.query(question, vector, depth, retriever, depth=depth), pipeline.RANKING
        )
        return found.ranking

    def close(self) -> None:
        """Release the snapshot's store (a Milvus client); the model stays, since a reload
        hands it to the next service. Closing twice is harmless."""
        if not self._closed:
            self._closed = True
            self.snapshot.close()

    @property
    def closed(self) -> bool:
        return self._closed

    # -- lookups ------------------------------------------------------------------

    def passage(self, passage_id: str) -> Passage:
        index = self.snapshot.by_id.get(passage_id)
        if index is None:
            raise NotFoundError(f"no passage with id {passage_id!r}")
        return self.snapshot.passages[index]

    def documents(self) -> list[DocumentInfo]:
        return list(self.snapshot.documents.values())

    def document(self, doc_id: str) -> DocumentInfo:
        doc = self.snapshot.documents.get(doc_id)
        if doc is None:
            raise NotFoundError(f"no document with id {doc_id!r}")
        return doc

    def document_span(
        self, doc_id: str, start: int | None, end: int | None
    ) -> tuple[DocumentInfo, int, int]:
        """The document and ``[start, end)`` with the defaults filled in (0, its length),
        checked against it: ``InvalidSpanError`` for a span outside the document."""
        doc = self.document(doc_id)
        lo = 0 if start is None else start
        hi = doc.length if end is None else end
        if not 0 <= lo <= hi <= doc.length:
            raise InvalidSpanError(
                f"span [{lo}, {hi}) is outside document {doc_id!r} of length {doc.length}"
            )
        return doc, lo, hi
