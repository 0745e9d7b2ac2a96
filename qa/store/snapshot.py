"""A loaded index: everything a query needs, whichever store it came from."""

from __future__ import annotations

from dataclasses import dataclass, field

from qa.embedding import Vectors
from qa.keywords import BM25Index
from qa.store.manifest import Manifest
from qa.store.vectors import VectorStore
from qa.types import Document, Passage


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    """A document as the index knows it: enough to verify any citation."""

    doc_id: str
    title: str
    path: str
    sha256: str
    text: str

    @property
    def length(self) -> int:
        return len(self.text)

    @classmethod
    def of(cls, doc: Document) -> DocumentInfo:
        return cls(doc.doc_id, doc.title, doc.path, doc.sha256, doc.text)


@dataclass(slots=True)
class Snapshot:
    """Everything a query needs, loaded once."""

    manifest: Manifest
    documents: dict[str, DocumentInfo]
    passages: list[Passage]
    vectors: VectorStore
    bm25: BM25Index
    sentence_vectors: Vectors  # rows for passage i: sentence_rows[i]:sentence_rows[i+1]
    sentence_rows: list[int]
    by_id: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_id = {p.passage_id: i for i, p in enumerate(self.passages)}

    def sentence_block(self, index: int) -> Vectors:
        return self.sentence_vectors[self.sentence_rows[index] : self.sentence_rows[index + 1]]

    def close(self) -> None:
        """Release the vector store (a Milvus client). The arrays and the memory-mapped
        sentence file go with the last reference: a request may still hold a view."""
        self.vectors.close()
