"""An index held in memory only: what evaluation variants build, never touching the disk."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from qa.errors import IndexMissingError
from qa.keywords import BM25Index
from qa.store.manifest import ChunkingEntry, DocumentEntry, Manifest, ModelEntry, make_manifest
from qa.store.protocol import EmbeddedDocument, Published
from qa.store.snapshot import DocumentInfo, Snapshot
from qa.store.vectors import FaissVectorStore, choose_index_spec
from qa.types import Passage, Progress

LOCATION = "memory"


class MemoryStore:
    """The same snapshot a FAISS build would load, assembled from the committed batches."""

    def __init__(self) -> None:
        self._docs: dict[str, EmbeddedDocument] = {}
        self._snapshot: Snapshot | None = None
        self._model: ModelEntry | None = None
        self._chunking: ChunkingEntry | None = None

    @property
    def location(self) -> str:
        return LOCATION

    def published_manifest(self) -> Manifest:
        return self.load().manifest

    def load(self) -> Snapshot:
        if self._snapshot is None:
            raise IndexMissingError("nothing published in memory yet")
        return self._snapshot

    def verify(self) -> None:
        return None

    def begin(self, model: ModelEntry, chunking: ChunkingEntry, reset: bool = False) -> None:
        if reset or (model, chunking) != (self._model, self._chunking):
            self._docs.clear()
        self._model, self._chunking = model, chunking

    def has(self, doc_id: str, sha256: str) -> bool:
        doc = self._docs.get(doc_id)
        return doc is not None and doc.info.sha256 == sha256

    def commit(self, batch: Sequence[EmbeddedDocument]) -> None:
        for doc in batch:
            self._docs[doc.info.doc_id] = doc

    def delete(self, doc_ids: Sequence[str]) -> None:
        for doc_id in doc_ids:
            self._docs.pop(doc_id, None)

    def publish(self, documents: Sequence[DocumentInfo], progress: Progress) -> Published:
        assert self._model is not None and self._chunking is not None
        dim = self._model.dim
        docs = [self._docs[d.doc_id] for d in documents]
        passages: list[Passage] = [p for doc in docs for p in doc.passages]
        vectors = np.concatenate(
            [np.zeros((0, dim), dtype=np.float32), *(doc.passage_vectors for doc in docs)]
        )
        sentence_vectors = np.concatenate(
            [
                np.zeros((0, dim), dtype=np.float32),
                *(doc.sentence_vectors[doc.sentence_layout()] for doc in docs),
            ]
        )
        rows = [0]
        for doc in docs:
            for count in doc.sentence_counts():
                rows.append(rows[-1] + count)
        store = FaissVectorStore.build(vectors, choose_index_spec(len(vectors)))
        manifest = make_manifest(
            self._model,
            self._chunking,
            f"faiss:{store.spec}",
            {
                d.doc_id: DocumentEntry(path=d.path, sha256=d.sha256, passages=len(doc.passages))
                for d, doc in zip(documents, docs, strict=True)
            },
            tokens=sum(doc.tokens for doc in docs),
        )
        self._snapshot = Snapshot(
            manifest=manifest,
            documents={d.doc_id: d for d in documents},
            passages=passages,
            vectors=store,
            bm25=BM25Index.build([p.keyword_text for p in passages]),
            sentence_vectors=sentence_vectors,
            sentence_rows=rows,
        )
        return Published(manifest, LOCATION, None)

    def close(self) -> None:
        return None
