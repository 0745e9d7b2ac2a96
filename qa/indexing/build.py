"""Build, plan, check and open the configured index: the pipeline on the configured store."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from qa.config import Settings
from qa.embedding import Embedder
from qa.errors import CorruptIndexError, IndexLockedError, IndexMissingError, StaleIndexError
from qa.indexing.pipeline import IndexResult, read_all, run_pipeline
from qa.indexing.plan import UpdatePlan, document_reasons, make_plan, settings_reasons
from qa.indexing.seeds import scan_seeds
from qa.store import open_store
from qa.store.manifest import ChunkingEntry, Manifest
from qa.store.snapshot import Snapshot
from qa.types import Progress, no_progress

if TYPE_CHECKING:
    from filelock import BaseFileLock

log = logging.getLogger(__name__)

LOCK_FILE = ".build.lock"


def _lock(settings: Settings) -> BaseFileLock:
    from filelock import FileLock

    settings.index_dir.mkdir(parents=True, exist_ok=True)
    return FileLock(str(settings.index_dir / LOCK_FILE), timeout=settings.lock_timeout_s)


def build_index(
    settings: Settings, embedder: Embedder, progress: Progress = no_progress, force: bool = False
) -> IndexResult:
    """Bring the index in line with the seeds: embed only new or changed documents.

    Only one build runs at a time. Every document is parsed first, so a bad seed
    fails before anything is written. With FAISS the result is published
    atomically; with Milvus each batch of documents is committed as it completes.
    Either way an interrupted build resumes without re-embedding finished documents.
    ``force`` re-embeds everything.
    """
    from filelock import Timeout

    seeds = scan_seeds(settings.seeds_dir, settings.project_root)
    documents = read_all(seeds)  # fails before writing
    lock = _lock(settings)
    try:
        lock.acquire()
    except Timeout as exc:
        raise IndexLockedError(
            f"another `qa index` holds {settings.index_dir / LOCK_FILE}; "
            f"gave up after {settings.lock_timeout_s:g}s"
        ) from exc
    store = open_store(settings)
    try:
        return run_pipeline(
            store,
            seeds,
            embedder,
            settings.chunking,
            settings.batch_size,
            progress,
            force=force,
            documents=documents,
        )
    finally:
        store.close()
        lock.release()


def published_manifest(settings: Settings) -> Manifest:
    """The manifest of the index the configured store serves (any store)."""
    store = open_store(settings)
    try:
        return store.published_manifest()
    finally:
        store.close()


def plan_index(settings: Settings, embedder: Embedder | None = None) -> UpdatePlan:
    """What ``qa index`` would add, re-embed and remove; changes nothing.

    Without an embedder the model is not compared (only a changed model id is
    noticed, through ``check_index``).
    """
    seeds = scan_seeds(settings.seeds_dir, settings.project_root)
    try:
        manifest: Manifest | None = published_manifest(settings)
    except (IndexMissingError, CorruptIndexError):
        manifest = None
    committed = {d: e.sha256 for d, e in manifest.documents.items()} if manifest else {}
    reasons = (
        settings_reasons(
            manifest, ChunkingEntry.of(settings.chunking), embedder.model_id, embedder.weights_hash
        )
        if manifest is not None and embedder is not None
        else []
    )
    return make_plan(committed, [(s.doc_id, s.sha256) for s in seeds], reasons)


def check_index(settings: Settings, embedder: Embedder | None = None) -> list[str]:
    """Why the published index is unusable or stale; empty when it can be served."""
    try:
        manifest = published_manifest(settings)
    except (IndexMissingError, CorruptIndexError) as exc:
        return [str(exc)]
    if settings.vector_store != "faiss" and not settings.seeds_dir.is_dir():
        # A replica of a shared index has no seeds: the index itself is the collection,
        # so only the model and chunking settings can make it stale.
        current = {doc_id: entry.sha256 for doc_id, entry in manifest.documents.items()}
    else:
        seeds = scan_seeds(settings.seeds_dir, settings.project_root)
        current = {s.doc_id: s.sha256 for s in seeds}
    model_id = embedder.model_id if embedder else _configured_model_id(settings)
    weights = embedder.weights_hash if embedder else None
    chunking = ChunkingEntry.of(settings.chunking)
    return settings_reasons(manifest, chunking, model_id, weights) + document_reasons(
        manifest, current
    )


def verify_index(settings: Settings) -> list[str]:
    """Why the published index's files are damaged (checked before serving); empty if sound."""
    store = open_store(settings)
    try:
        store.verify()
    except (IndexMissingError, CorruptIndexError) as exc:
        return [str(exc)]
    finally:
        store.close()
    return []


def _configured_model_id(settings: Settings) -> str:
    from qa.embedding import BUNDLED_MODEL_ID

    return settings.model or BUNDLED_MODEL_ID


def open_index(
    settings: Settings,
    embedder: Embedder,
    rebuild: bool,
    notice: Callable[[str], None] = log.warning,
    progress: Progress = no_progress,
) -> Snapshot:
    """Load the published index, rebuilding it first if it is missing, stale or damaged."""
    reasons = check_index(settings, embedder)
    if not reasons:
        try:
            return open_store(settings).load()
        except CorruptIndexError as exc:
            reasons = [str(exc)]
    if not rebuild:
        raise StaleIndexError(reasons)
    notice("rebuilding index: " + "; ".join(reasons))
    build_index(settings, embedder, progress)
    return open_store(settings).load()
