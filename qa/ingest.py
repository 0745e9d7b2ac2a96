"""Streaming, incremental ingestion shared by every vector-store backend.

A document is the unit of work: it is chunked and embedded once, and the result
(an ``EmbeddedDocument``) is committed by the backend as soon as its batch is
done — into per-document checkpoint files for FAISS, into the collections for
Milvus. Comparing per-document hashes with what is already committed gives the
plan (add, re-embed, delete, keep), which is what makes ``qa index`` incremental
and an interrupted run resumable: committed documents are never embedded again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qa.chunking import Chunker, ModelLimit
from qa.config import ChunkSettings, Settings
from qa.documents import load_document, relative_path, seed_files, slugify
from qa.embedding import Embedder, Vectors
from qa.errors import SeedsError
from qa.store.manifest import SCHEMA_VERSION, ChunkingEntry, Manifest, ModelEntry
from qa.store.snapshot import DocumentInfo
from qa.types import Document, Passage, Span

# (stage, done, total): lets the CLI draw a progress bar without the core knowing rich.
Progress = Callable[[str, int, int], None]

# Documents chunked and embedded together: big enough to keep the model busy,
# small enough that a crash loses little work and memory stays bounded.
DOCS_PER_BATCH = 64
EMBED_STAGE = "embedding documents"


def _noop(stage: str, done: int, total: int) -> None:
    return None


@dataclass(frozen=True, slots=True)
class EmbeddedDocument:
    """One document chunked and embedded: what a backend commits as one unit.

    ``sentences`` are the document's distinct sentence spans (overlapping passages
    share sentences, which are embedded once); ``sentence_vectors`` has one row each.
    """

    info: DocumentInfo
    passages: list[Passage]
    passage_vectors: Vectors
    sentences: list[Span]
    sentence_vectors: Vectors

    def sentence_layout(self) -> list[int]:
        """For each passage sentence in passage order, its row in ``sentence_vectors``."""
        row = {(s.start, s.end): i for i, s in enumerate(self.sentences)}
        return [row[(s.start, s.end)] for p in self.passages for s in p.sentences]

    @property
    def tokens(self) -> int:
        return sum(p.token_count for p in self.passages)


@dataclass(frozen=True, slots=True)
class SeedFile:
    doc_id: str
    path: Path
    rel_path: str
    sha256: str


@dataclass(slots=True)
class UpdatePlan:
    """What an incremental ``qa index`` would do, per document id (in seed order)."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    full_reasons: list[str] = field(default_factory=list)  # why everything is re-embedded

    @property
    def to_embed(self) -> list[str]:
        return [*self.added, *self.changed]

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.removed or self.full_reasons)

    def lines(self, limit: int = 20) -> list[str]:
        """Human-readable summary, listing at most ``limit`` ids per kind."""
        out = [f"full rebuild: {reason}" for reason in self.full_reasons]
        for verb, ids in (("add", self.added), ("re-embed", self.changed)):
            if ids:
                out.append(f"would {verb} {len(ids)}: {_listing(ids, limit)}")
        if self.removed:
            out.append(f"would remove {len(self.removed)}: {_listing(self.removed, limit)}")
        return out


def _listing(ids: list[str], limit: int) -> str:
    shown = ", ".join(ids[:limit])
    return shown + (f", … (+{len(ids) - limit} more)" if len(ids) > limit else "")


def scan_seeds(settings: Settings) -> list[SeedFile]:
    """Every seed file with its id and hash, in stable order, without parsing it."""
    root = settings.project_root
    seen: dict[str, str] = {}
    out = []
    for path in seed_files(settings.seeds_dir):
        doc_id = slugify(path.stem)
        rel = relative_path(path, root)
        if doc_id in seen:
            raise SeedsError(f"documents {seen[doc_id]} and {rel} have the same id {doc_id!r}")
        seen[doc_id] = rel
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        out.append(SeedFile(doc_id, path, rel, sha))
    return out


def make_plan(
    committed: dict[str, str], seeds: list[SeedFile], full_reasons: list[str] | None = None
) -> UpdatePlan:
    """Compare committed ``doc_id -> sha256`` with the seeds."""
    plan = UpdatePlan(full_reasons=list(full_reasons or []))
    current = {s.doc_id for s in seeds}
    for seed in seeds:
        if plan.full_reasons:
            (plan.changed if seed.doc_id in committed else plan.added).append(seed.doc_id)
        elif seed.doc_id not in committed:
            plan.added.append(seed.doc_id)
        elif committed[seed.doc_id] != seed.sha256:
            plan.changed.append(seed.doc_id)
        else:
            plan.unchanged.append(seed.doc_id)
    plan.removed = sorted(set(committed) - current)
    return plan


def settings_reasons(
    previous: Manifest, embedder_model: ModelEntry, chunking: ChunkSettings
) -> list[str]:
    """Why nothing already embedded can be reused (model, chunking or schema changed)."""
    reasons = []
    if previous.schema_version != SCHEMA_VERSION:
        reasons.append(f"index schema {previous.schema_version} != {SCHEMA_VERSION}")
    if (previous.model.model_id, previous.model.weights_sha256) != (
        embedder_model.model_id,
        embedder_model.weights_sha256,
    ):
        reasons.append(f"model changed ({previous.model.model_id} -> {embedder_model.model_id})")
    if previous.chunking != ChunkingEntry.of(chunking):
        reasons.append("chunking settings changed")
    return reasons


def model_entry(embedder: Embedder) -> ModelEntry:
    return ModelEntry(
        model_id=embedder.model_id,
        weights_sha256=embedder.weights_hash,
        dim=embedder.dim,
        max_seq_length=embedder.max_seq_length,
    )


def validate_seeds(seeds: list[SeedFile], root: Path) -> dict[str, DocumentInfo]:
    """Parse every seed once so a bad document fails before anything is written."""
    return {s.doc_id: DocumentInfo.of(load_document(s.path, root)) for s in seeds}


def make_chunker(settings: ChunkSettings, embedder: Embedder) -> Chunker:
    return Chunker(settings, ModelLimit(embedder.count_tokens, embedder.max_seq_length))


def embed_documents(
    documents: Iterable[Document],
    chunker: Chunker,
    embedder: Embedder,
    batch_size: int = 32,
    docs_per_batch: int | None = None,
) -> Iterator[list[EmbeddedDocument]]:
    """Chunk and embed documents a batch at a time; only one batch is ever in memory."""
    docs_per_batch = docs_per_batch or DOCS_PER_BATCH
    batch: list[Document] = []
    for doc in documents:
        batch.append(doc)
        if len(batch) >= docs_per_batch:
            yield _embed_batch(batch, chunker, embedder, batch_size)
            batch = []
    if batch:
        yield _embed_batch(batch, chunker, embedder, batch_size)


def _embed_batch(
    batch: list[Document], chunker: Chunker, embedder: Embedder, batch_size: int
) -> list[EmbeddedDocument]:
    chunked = [chunker.chunk(doc) for doc in batch]
    spans: list[list[Span]] = []
    for doc_passages in chunked:
        unique = dict.fromkeys((s.start, s.end) for p in doc_passages for s in p.sentences)
        spans.append([Span(s, e) for s, e in unique])
    passage_vectors = embedder.encode(
        [p.embedding_text for ps in chunked for p in ps], batch_size=batch_size
    )
    sentence_vectors = embedder.encode(
        [doc.text[s.start : s.end] for doc, ss in zip(batch, spans, strict=True) for s in ss],
        batch_size=batch_size,
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


def iter_documents(seeds: Iterable[SeedFile], root: Path) -> Iterator[Document]:
    """Parse documents lazily, so only the current batch's blocks are in memory."""
    for seed in seeds:
        yield load_document(seed.path, root)


def embed_seeds(
    seeds: list[SeedFile], settings: Settings, embedder: Embedder, progress: Progress
) -> Iterator[list[EmbeddedDocument]]:
    """Chunk and embed ``seeds`` in batches for a backend to store.

    Progress counts a batch once the caller has stored it and asked for the next,
    so a reported document is a committed one.
    """
    progress(EMBED_STAGE, 0, len(seeds))
    chunker = make_chunker(settings.chunking, embedder)
    done = 0
    documents = iter_documents(seeds, settings.project_root)
    for batch in embed_documents(documents, chunker, embedder, settings.batch_size):
        yield batch
        done += len(batch)
        progress(EMBED_STAGE, done, len(seeds))


def empty_vectors(dim: int) -> Vectors:
    return np.zeros((0, dim), dtype=np.float32)
