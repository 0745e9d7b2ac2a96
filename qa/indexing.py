"""Build, check and open the index: seeds -> passages -> vectors -> snapshot."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qa import __version__
from qa.config import ChunkSettings, Settings
from qa.documents import seed_fingerprints
from qa.embedding import Embedder, Vectors
from qa.errors import CorruptIndexError, IndexLockedError, IndexMissingError, StaleIndexError
from qa.ingest import make_chunker, model_entry
from qa.retrieval.bm25 import BM25Index
from qa.store.manifest import (
    SCHEMA_VERSION,
    ChunkingEntry,
    DocumentEntry,
    Manifest,
    stale_reasons,
)
from qa.store.snapshot import (
    DocumentInfo,
    Snapshot,
)
from qa.store.vectors import FaissVectorStore, choose_index_spec
from qa.types import Document, Passage

if TYPE_CHECKING:
    from qa.ingest import UpdatePlan

log = logging.getLogger(__name__)

# (stage, done, total): lets the CLI draw a progress bar without the core knowing rich.
Progress = Callable[[str, int, int], None]
LOCK_FILE = ".build.lock"


@dataclass(frozen=True, slots=True)
class BuildSummary:
    documents: int
    passages: int
    tokens: int
    seconds: float
    folder: Path  # the published build (FAISS) or the index folder (Milvus)
    added: int = 0
    changed: int = 0
    removed: int = 0
    embedded: int = 0  # documents embedded in this run (the rest were reused)
    location: str = ""


def _noop(stage: str, done: int, total: int) -> None:
    return None


def encode_batched(
    embedder: Embedder, texts: list[str], batch_size: int, stage: str, progress: Progress
) -> Vectors:
    """Encode in batches into one preallocated array, reporting progress."""
    out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    progress(stage, 0, len(texts))
    step = max(batch_size * 8, 1)
    for begin in range(0, len(texts), step):
        chunk = texts[begin : begin + step]
        out[begin : begin + len(chunk)] = embedder.encode(chunk, batch_size=batch_size)
        progress(stage, begin + len(chunk), len(texts))
    return out


def assemble(
    documents: list[Document],
    chunk_settings: ChunkSettings,
    embedder: Embedder,
    batch_size: int = 32,
    progress: Progress = _noop,
) -> Snapshot:
    """Chunk, embed and index documents in memory, without touching the disk."""
    chunker = make_chunker(chunk_settings, embedder)
    passages: list[Passage] = []
    for number, doc in enumerate(documents, 1):
        passages.extend(chunker.chunk(doc))
        progress("chunking", number, len(documents))
    vectors = encode_batched(
        embedder, [p.embedding_text for p in passages], batch_size, "embedding passages", progress
    )
    # Each distinct sentence is embedded once, then laid out passage by passage.
    doc_text = {d.doc_id: d.text for d in documents}
    unique: dict[tuple[str, int, int], int] = {}
    order: list[int] = []
    rows = [0]
    for p in passages:
        for s in p.sentences:
            key = (p.doc_id, s.start, s.end)
            order.append(unique.setdefault(key, len(unique)))
        rows.append(len(order))
    sentence_texts = [doc_text[d][s:e] for d, s, e in unique]
    unique_vectors = encode_batched(
        embedder, sentence_texts, batch_size, "embedding sentences", progress
    )
    sentence_vectors = (
        unique_vectors[np.asarray(order, dtype=np.int64)] if order else unique_vectors
    )
    counts: dict[str, int] = {}
    for p in passages:
        counts[p.doc_id] = counts.get(p.doc_id, 0) + 1
    store = FaissVectorStore.build(vectors, choose_index_spec(len(vectors)))
    manifest = Manifest(
        schema_version=SCHEMA_VERSION,
        package_version=__version__,
        built_at=Manifest.now(),
        model=model_entry(embedder),
        chunking=ChunkingEntry.of(chunk_settings),
        vector_store=f"faiss:{store.spec}",
        documents={
            d.doc_id: DocumentEntry(path=d.path, sha256=d.sha256, passages=counts.get(d.doc_id, 0))
            for d in documents
        },
        passages=len(passages),
        tokens=sum(p.token_count for p in passages),
        files={},
    )
    return Snapshot(
        manifest=manifest,
        documents={d.doc_id: DocumentInfo.of(d) for d in documents},
        passages=passages,
        vectors=store,
        bm25=BM25Index.build([p.keyword_text for p in passages]),
        sentence_vectors=sentence_vectors,
        sentence_rows=rows,
    )


def _lock(settings: Settings) -> object:
    from filelock import FileLock

    settings.index_dir.mkdir(parents=True, exist_ok=True)
    return FileLock(str(settings.index_dir / LOCK_FILE), timeout=settings.lock_timeout_s)


def build_index(
    settings: Settings, embedder: Embedder, progress: Progress = _noop, force: bool = False
) -> BuildSummary:
    """Bring the index in line with the seeds: embed only new or changed documents.

    Only one build runs at a time. Every document is parsed first, so a bad seed
    fails before anything is written. With FAISS the result is published
    atomically; with Milvus each batch of documents is committed as it completes.
    Either way an interrupted build resumes without re-embedding finished documents.
    ``force`` re-embeds everything.
    """
    from filelock import Timeout

    from qa.ingest import scan_seeds, validate_seeds
    from qa.store.backend import open_backend

    started = time.perf_counter()
    seeds = scan_seeds(settings)
    documents = validate_seeds(seeds, settings.project_root)  # fails before writing
    lock = _lock(settings)
    try:
        lock.acquire()  # type: ignore[attr-defined]
    except Timeout as exc:
        raise IndexLockedError(
            f"another `qa index` holds {settings.index_dir / LOCK_FILE}; "
            f"gave up after {settings.lock_timeout_s:g}s"
        ) from exc
    backend = open_backend(settings)
    try:
        result = backend.update(seeds, documents, embedder, progress, force=force)
    finally:
        backend.close()
        lock.release()  # type: ignore[attr-defined]
    return BuildSummary(
        documents=len(seeds),
        passages=result.passages,
        tokens=result.tokens,
        seconds=time.perf_counter() - started,
        folder=result.folder,
        added=len(result.plan.added),
        changed=len(result.plan.changed),
        removed=len(result.plan.removed),
        embedded=result.embedded,
        location=result.location,
    )


def published_manifest(settings: Settings) -> Manifest:
    """The manifest of the index the configured backend serves (any backend)."""
    from qa.store.backend import open_backend

    backend = open_backend(settings)
    try:
        return backend.published_manifest()
    finally:
        backend.close()


def plan_index(settings: Settings, embedder: Embedder | None = None) -> UpdatePlan:
    """What ``qa index`` would add, re-embed and remove; changes nothing.

    Without an embedder the model is not compared (only a changed model id is
    noticed, through ``check_index``).
    """
    from qa.ingest import scan_seeds
    from qa.store.backend import open_backend

    seeds = scan_seeds(settings)
    backend = open_backend(settings)
    try:
        return backend.plan(seeds, model_entry(embedder) if embedder is not None else None)
    finally:
        backend.close()


def check_index(settings: Settings, embedder: Embedder | None = None) -> list[str]:
    """Why the published index is unusable or stale; empty when it can be served."""
    try:
        manifest = published_manifest(settings)
    except (IndexMissingError, CorruptIndexError) as exc:
        return [str(exc)]
    if settings.vector_store != "faiss" and not settings.seeds_dir.is_dir():
        # A replica of a shared index has no seeds: the index itself is the collection,
        # so only the model and chunking settings can make it stale.
        seeds = dict(manifest.documents)
    else:
        seeds = {
            doc_id: DocumentEntry(path=path, sha256=sha)
            for doc_id, (path, sha) in seed_fingerprints(
                settings.seeds_dir, settings.project_root
            ).items()
        }
    model_id = embedder.model_id if embedder else _configured_model_id(settings)
    weights = embedder.weights_hash if embedder else None
    return stale_reasons(manifest, seeds, settings.chunking, model_id, weights)


def _configured_model_id(settings: Settings) -> str:
    from qa.embedding import BUNDLED_MODEL_ID

    return settings.model or BUNDLED_MODEL_ID


def open_index(
    settings: Settings,
    embedder: Embedder,
    rebuild: bool,
    notice: Callable[[str], None] = log.warning,
    progress: Progress = _noop,
) -> Snapshot:
    """Load the published index, rebuilding it first if it is missing, stale or damaged."""
    from qa.store.backend import open_backend

    reasons = check_index(settings, embedder)
    if not reasons:
        try:
            return open_backend(settings).load()
        except CorruptIndexError as exc:
            reasons = [str(exc)]
    if not rebuild:
        raise StaleIndexError(reasons)
    notice("rebuilding index: " + "; ".join(reasons))
    build_index(settings, embedder, progress)
    return open_backend(settings).load()
