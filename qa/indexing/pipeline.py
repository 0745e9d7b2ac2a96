"""The one indexing pipeline: sources -> documents -> passages -> vectors -> a store.

``qa index``, every ``qa eval`` variant, the sweep and the BEIR benchmark run
``run_pipeline``; only the store differs (FAISS folders, Milvus collections or
memory). A document is the unit of work: it is chunked and embedded once, and
committed as soon as its batch is done, so an interrupted run resumes where it
stopped and an unchanged document is never embedded again.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from qa.chunking import Chunker, ModelLimit
from qa.config import ChunkSettings
from qa.embedding import Embedder
from qa.errors import CorruptIndexError, IndexMissingError
from qa.indexing.plan import UpdatePlan, document_reasons, make_plan, settings_reasons
from qa.store.manifest import ChunkingEntry, Manifest, ModelEntry
from qa.store.memory import MemoryStore
from qa.store.protocol import EmbeddedDocument, Store
from qa.store.snapshot import DocumentInfo, Snapshot
from qa.types import Document, Progress, Span, no_progress

# Documents chunked and embedded together: big enough to keep the model busy,
# small enough that a crash loses little work and memory stays bounded.
DOCS_PER_BATCH = 64
EMBED_STAGE = "embedding documents"


class Source(Protocol):
    """Something that becomes one document: a seed file, a BEIR entry, a parsed document."""

    @property
    def doc_id(self) -> str: ...

    @property
    def sha256(self) -> str: ...

    def read(self) -> Document: ...


@dataclass(frozen=True, slots=True)
class Parsed:
    """A document already in memory, as a source."""

    document: Document

    @property
    def doc_id(self) -> str:
        return self.document.doc_id

    @property
    def sha256(self) -> str:
        return self.document.sha256

    def read(self) -> Document:
        return self.document


@dataclass(frozen=True, slots=True)
class IndexResult:
    """What one run of the pipeline did."""

    plan: UpdatePlan
    manifest: Manifest
    documents: int
    embedded: int  # documents chunked and embedded in this run (the rest were reused)
    seconds: float
    location: str  # where the index lives, for messages
    folder: Path | None  # the published build folder, for stores that write one

    @property
    def passages(self) -> int:
        return self.manifest.passages

    @property
    def tokens(self) -> int:
        return self.manifest.tokens

    @property
    def added(self) -> int:
        return len(self.plan.added)

    @property
    def changed(self) -> int:
        return len(self.plan.changed)

    @property
    def removed(self) -> int:
        return len(self.plan.removed)


def model_entry(embedder: Embedder) -> ModelEntry:
    return ModelEntry(
        model_id=embedder.model_id,
        weights_sha256=embedder.weights_hash,
        dim=embedder.dim,
        max_seq_length=embedder.max_seq_length,
    )


def make_chunker(settings: ChunkSettings, embedder: Embedder) -> Chunker:
    return Chunker(settings, ModelLimit(embedder.count_tokens, embedder.max_seq_length))


def read_all(sources: Sequence[Source]) -> list[DocumentInfo]:
    """Parse every source once, so a bad document fails before anything is written."""
    return [DocumentInfo.of(source.read()) for source in sources]


def embed_documents(
    documents: Iterable[Document],
    chunker: Chunker,
    embedder: Embedder,
    batch_size: int = 32,
    sentences: bool = True,
) -> Iterator[list[EmbeddedDocument]]:
    """Chunk and embed documents a batch at a time; only one batch is ever in memory."""
    batch: list[Document] = []
    for doc in documents:
        batch.append(doc)
        if len(batch) >= DOCS_PER_BATCH:
            yield _embed_batch(batch, chunker, embedder, batch_size, sentences)
            batch = []
    if batch:
        yield _embed_batch(batch, chunker, embedder, batch_size, sentences)


def _embed_batch(
    batch: list[Document], chunker: Chunker, embedder: Embedder, batch_size: int, sentences: bool
) -> list[EmbeddedDocument]:
    """Passages embedded with their headings; each distinct sentence once (for quotes)."""
    chunked = [chunker.chunk(doc) for doc in batch]
    spans: list[list[Span]] = []
    for doc_passages in chunked:
        unique = dict.fromkeys((s.start, s.end) for p in doc_passages for s in p.sentences)
        spans.append([Span(s, e) for s, e in unique] if sentences else [])
    passage_vectors = embedder.encode(
        [p.embedding_text for ps in chunked for p in ps], batch_size=batch_size
    )
    sentence_texts = [
        doc.text[s.start : s.end] for doc, ss in zip(batch, spans, strict=True) for s in ss
    ]
    sentence_vectors = (
        embedder.encode(sentence_texts, batch_size=batch_size) if sentences else passage_vectors[:0]
    )
    out = []
    p_row = s_row = 0
    for doc, doc_passages, doc_spans in zip(batch, chunked, spans, strict=True):
        out.append(
            EmbeddedDocument(
                info=DocumentInfo.of(doc),
                passages=doc_passages,
                passage_vectors=passage_vectors[p_row : p_row + len(doc_passages)].copy(),
                sentences=doc_spans,
                sentence_vectors=sentence_vectors[s_row : s_row + len(doc_spans)].copy(),
            )
        )
        p_row += len(doc_passages)
        s_row += len(doc_spans)
    return out


def stale_store_reasons(
    store: Store, sources: Sequence[Source], embedder: Embedder, chunking: ChunkSettings
) -> list[str]:
    """Why ``store`` does not already serve ``sources`` as the pipeline would build them."""
    try:
        manifest = store.published_manifest()
    except (IndexMissingError, CorruptIndexError) as exc:
        return [str(exc)]
    entry = ChunkingEntry.of(chunking)
    current = {s.doc_id: s.sha256 for s in sources}
    return settings_reasons(
        manifest, entry, embedder.model_id, embedder.weights_hash
    ) + document_reasons(manifest, current)


def run_pipeline(
    store: Store,
    sources: Sequence[Source],
    embedder: Embedder,
    chunking: ChunkSettings,
    batch_size: int = 32,
    progress: Progress = no_progress,
    force: bool = False,
    sentences: bool = True,
    documents: Sequence[DocumentInfo] | None = None,
) -> IndexResult:
    """Bring ``store`` in line with ``sources``: embed only what it does not hold yet.

    ``force`` re-embeds everything. ``sentences=False`` skips the sentence vectors,
    which only choose quotes (quotes then fall back to word overlap). Progress
    counts a batch once the store has committed it. ``documents`` are the sources
    already read (by ``read_all``), when the caller parsed them earlier.
    """
    started = time.perf_counter()
    infos = list(documents) if documents is not None else read_all(sources)
    model = model_entry(embedder)
    entry = ChunkingEntry.of(chunking)
    try:
        previous: Manifest | None = store.published_manifest()
    except (IndexMissingError, CorruptIndexError):
        previous = None
    reasons = ["--force"] if force else []
    if previous is not None and not force:
        reasons = settings_reasons(previous, entry, model.model_id, model.weights_sha256)
    committed = {d: e.sha256 for d, e in previous.documents.items()} if previous else {}
    plan = make_plan(committed, [(s.doc_id, s.sha256) for s in sources], reasons)
    store.begin(model, entry, reset=force)
    store.delete(plan.removed)
    todo = [s for s in sources if not store.has(s.doc_id, s.sha256)]
    progress(EMBED_STAGE, 0, len(todo))
    chunker = make_chunker(chunking, embedder)
    done = 0
    parsed = (source.read() for source in todo)  # lazily: one batch of blocks in memory
    for batch in embed_documents(parsed, chunker, embedder, batch_size, sentences):
        store.commit(batch)
        done += len(batch)
        progress(EMBED_STAGE, done, len(todo))
    published = store.publish(infos, progress)
    return IndexResult(
        plan=plan,
        manifest=published.manifest,
        documents=len(sources),
        embedded=done,
        seconds=time.perf_counter() - started,
        location=published.location,
        folder=published.folder,
    )


def memory_index(
    documents: Sequence[Document],
    chunking: ChunkSettings,
    embedder: Embedder,
    batch_size: int = 32,
    progress: Progress = no_progress,
) -> Snapshot:
    """The index ``qa index`` would build from ``documents``, held in memory only."""
    store = MemoryStore()
    run_pipeline(store, [Parsed(d) for d in documents], embedder, chunking, batch_size, progress)
    return store.load()
