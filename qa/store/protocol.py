"""The one interface every store implements, and the unit it commits.

A store persists and loads what it is given. It decides nothing about what to
build: the indexing pipeline chunks and embeds documents, commits them in
batches, and finally asks the store to publish the listed documents as the
index that is served.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from qa.embedding import Vectors
from qa.store.manifest import ChunkingEntry, Manifest, ModelEntry
from qa.store.snapshot import DocumentInfo, Snapshot
from qa.types import Passage, Progress, Span


@dataclass(frozen=True, slots=True)
class EmbeddedDocument:
    """One document chunked and embedded: what a store commits as one unit.

    ``sentences`` are the document's distinct sentence spans (overlapping passages
    share sentences, which are embedded once); ``sentence_vectors`` has one row
    each. Both are empty when the build skipped sentence vectors (they only serve
    quotes), in which case no passage has sentence rows.
    """

    info: DocumentInfo
    passages: list[Passage]
    passage_vectors: Vectors
    sentences: list[Span]
    sentence_vectors: Vectors

    def sentence_layout(self) -> list[int]:
        """For each passage sentence in passage order, its row in ``sentence_vectors``."""
        if not self.sentences:
            return []
        row = {(s.start, s.end): i for i, s in enumerate(self.sentences)}
        return [row[(s.start, s.end)] for p in self.passages for s in p.sentences]

    def sentence_counts(self) -> list[int]:
        """How many sentence rows each passage has in the laid-out sentence vectors."""
        return [len(p.sentences) if self.sentences else 0 for p in self.passages]

    @property
    def tokens(self) -> int:
        return sum(p.token_count for p in self.passages)


@dataclass(frozen=True, slots=True)
class Published:
    """What ``Store.publish`` made current."""

    manifest: Manifest
    location: str  # for messages
    folder: Path | None  # the published build folder, for stores that write one


class Store(Protocol):
    """Where an index lives: FAISS folders, Milvus collections or memory."""

    @property
    def location(self) -> str:
        """Where the index lives, for messages."""
        ...

    def published_manifest(self) -> Manifest:
        """The served index's manifest, or ``IndexMissingError``/``CorruptIndexError``."""
        ...

    def load(self) -> Snapshot:
        """Everything a query needs, ready for ``QAService``."""
        ...

    def verify(self) -> None:
        """Raise ``CorruptIndexError`` naming what is damaged; cheap enough to run at start."""
        ...

    def begin(self, model: ModelEntry, chunking: ChunkingEntry, reset: bool = False) -> None:
        """Prepare to commit documents embedded with ``model`` and ``chunking``.

        Anything stored for other settings is not reused; ``reset`` forgets
        everything stored so far.
        """
        ...

    def has(self, doc_id: str, sha256: str) -> bool:
        """Whether this version of a document is committed (since ``begin``) and readable."""
        ...

    def commit(self, batch: Sequence[EmbeddedDocument]) -> None:
        """Store a batch durably; a document replaces any stored one with its id."""
        ...

    def delete(self, doc_ids: Sequence[str]) -> None: ...

    def publish(self, documents: Sequence[DocumentInfo], progress: Progress) -> Published:
        """Serve exactly ``documents`` (in this order), all of which must be committed."""
        ...

    def close(self) -> None: ...
