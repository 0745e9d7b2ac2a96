"""Where an index lives: one interface, two backends chosen by ``QA_VECTOR_STORE``.

- ``faiss`` (default): an immutable snapshot folder in ``index_dir`` published
  atomically, rebuilt incrementally from per-document checkpoints.
- ``milvus``: collections in Milvus (Milvus Lite from a file URI, or a server),
  updated in place per document; a replica needs nothing from the local disk.

Both produce the same ``Snapshot`` for the service, so ranking, citations,
quotes, BM25, fusion and abstention do not know which backend answered.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from qa import __version__
from qa.config import Settings
from qa.embedding import Embedder, Vectors
from qa.errors import CorruptIndexError, IndexMissingError
from qa.ingest import (
    Progress,
    SeedFile,
    UpdatePlan,
    embed_seeds,
    make_plan,
    model_entry,
    settings_reasons,
)
from qa.retrieval.bm25 import BM25Index
from qa.store.checkpoints import CheckpointStore
from qa.store.manifest import SCHEMA_VERSION, ChunkingEntry, DocumentEntry, Manifest, ModelEntry
from qa.store.snapshot import (
    DOCUMENTS_FILE,
    PASSAGES_FILE,
    SENTENCE_ROWS_FILE,
    SENTENCES_FILE,
    DocumentInfo,
    Snapshot,
    current_build,
    load_snapshot,
    new_build_folder,
    passage_record,
    publish,
    read_manifest,
    seal,
)
from qa.store.vectors import FaissVectorStore, choose_index_spec


@dataclass(frozen=True, slots=True)
class UpdateResult:
    """What one ``qa index`` run did."""

    plan: UpdatePlan
    embedded: int  # documents chunked and embedded in this run
    passages: int
    tokens: int
    seconds: float
    folder: Path  # the published build (FAISS) or the index folder (Milvus)
    location: str


class IndexBackend(Protocol):
    """The storage half of the index: read, load and update."""

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

    def plan(self, seeds: list[SeedFile], model: ModelEntry | None) -> UpdatePlan:
        """What ``update`` would do; changes nothing."""
        ...

    def update(
        self,
        seeds: list[SeedFile],
        documents: dict[str, DocumentInfo],
        embedder: Embedder,
        progress: Progress,
        force: bool = False,
    ) -> UpdateResult:
        """Bring the index in line with the seeds, embedding only what is new or changed."""
        ...

    def close(self) -> None: ...


def open_backend(settings: Settings) -> IndexBackend:
    """The backend named by ``settings.vector_store``."""
    if settings.vector_store == "faiss":
        return FaissBackend(settings)
    from qa.store.milvus_store import MilvusBackend

    return MilvusBackend(settings)


class FaissBackend:
    """Snapshot folders in ``index_dir``; vectors reused from per-document checkpoints."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.index_dir = settings.index_dir

    @property
    def location(self) -> str:
        return str(self.index_dir)

    def published_manifest(self) -> Manifest:
        return read_manifest(current_build(self.index_dir))

    def load(self) -> Snapshot:
        return load_snapshot(current_build(self.index_dir))

    def _committed(self, model: ModelEntry | None) -> tuple[dict[str, str], list[str]]:
        try:
            manifest = self.published_manifest()
        except (IndexMissingError, CorruptIndexError):
            return {}, []
        committed = {d: e.sha256 for d, e in manifest.documents.items()}
        reasons = (
            settings_reasons(manifest, model, self.settings.chunking) if model is not None else []
        )
        return committed, reasons

    def plan(self, seeds: list[SeedFile], model: ModelEntry | None) -> UpdatePlan:
        committed, reasons = self._committed(model)
        return make_plan(committed, seeds, reasons)

    def update(
        self,
        seeds: list[SeedFile],
        documents: dict[str, DocumentInfo],
        embedder: Embedder,
        progress: Progress,
        force: bool = False,
    ) -> UpdateResult:
        started = time.perf_counter()
        model = model_entry(embedder)
        plan = self.plan(seeds, model)
        if force:
            plan = make_plan({}, seeds, ["--force"])
        store = CheckpointStore(self.index_dir, model, self.settings.chunking)
        if force:
            store.clear()
        todo = [s for s in seeds if not store.has(s)]
        embedded = 0
        for batch in embed_seeds(todo, self.settings, embedder, progress):
            for doc in batch:
                store.write(doc)  # committed: a crash after this never re-embeds it
            embedded += len(batch)
        temporary = new_build_folder(self.index_dir)
        manifest = write_from_checkpoints(
            temporary, seeds, documents, store, model, self.settings, progress
        )
        folder = publish(self.index_dir, temporary)
        store.prune(seeds)
        return UpdateResult(
            plan=plan,
            embedded=embedded,
            passages=manifest.passages,
            tokens=manifest.tokens,
            seconds=time.perf_counter() - started,
            folder=folder,
            location=str(folder),
        )

    def close(self) -> None:
        return None


def write_from_checkpoints(
    folder: Path,
    seeds: list[SeedFile],
    documents: dict[str, DocumentInfo],
    store: CheckpointStore,
    model: ModelEntry,
    settings: Settings,
    progress: Progress,
) -> Manifest:
    """Write a snapshot streaming one document at a time from its checkpoint.

    Vectors go straight into memory-mapped ``.npy`` files, so peak memory is the
    FAISS index itself plus one document, never a Python list of every vector.
    """
    folder.mkdir(parents=True, exist_ok=True)
    counts = {s.doc_id: store.counts(s) for s in seeds}
    total_passages = sum(c[0] for c in counts.values())
    total_rows = sum(c[1] for c in counts.values())
    dim = model.dim
    scratch = folder / "passage-vectors.tmp.npy"
    passage_vectors = _memmap(scratch, total_passages, dim)
    sentence_vectors = _memmap(folder / SENTENCES_FILE, total_rows, dim)
    sentence_rows = [0]
    texts: list[str] = []
    entries: dict[str, DocumentEntry] = {}
    p_row = s_row = 0
    stage = "writing index"
    with (folder / PASSAGES_FILE).open("w", encoding="utf-8") as handle:
        for number, seed in enumerate(seeds, 1):
            doc = store.read(seed, documents[seed.doc_id])
            n = len(doc.passages)
            passage_vectors[p_row : p_row + n] = doc.passage_vectors
            layout = doc.sentence_layout()
            sentence_vectors[s_row : s_row + len(layout)] = doc.sentence_vectors[layout]
            for passage in doc.passages:
                handle.write(json.dumps(passage_record(passage), ensure_ascii=False) + "\n")
                texts.append(passage.keyword_text)
                sentence_rows.append(sentence_rows[-1] + len(passage.sentences))
            entries[seed.doc_id] = DocumentEntry(path=seed.rel_path, sha256=seed.sha256, passages=n)
            p_row += n
            s_row += len(layout)
            progress(stage, number, len(seeds))
    spec = choose_index_spec(total_passages)
    vectors = FaissVectorStore.build(passage_vectors, spec)
    del passage_vectors
    scratch.unlink(missing_ok=True)
    if isinstance(sentence_vectors, np.memmap):
        sentence_vectors.flush()
    del sentence_vectors
    np.save(folder / SENTENCE_ROWS_FILE, np.asarray(sentence_rows, dtype=np.int64))
    _write_documents(folder / DOCUMENTS_FILE, [documents[s.doc_id] for s in seeds])
    bm25 = BM25Index.build(texts)
    files = [
        *vectors.save(folder),
        *bm25.save(folder),
        PASSAGES_FILE,
        DOCUMENTS_FILE,
        SENTENCES_FILE,
        SENTENCE_ROWS_FILE,
    ]
    manifest = Manifest(
        schema_version=SCHEMA_VERSION,
        package_version=__version__,
        built_at=Manifest.now(),
        model=model,
        chunking=ChunkingEntry.of(settings.chunking),
        vector_store=f"faiss:{vectors.spec}",
        documents=entries,
        passages=total_passages,
        tokens=sum(c[2] for c in counts.values()),
        files={},
    )
    return seal(folder, manifest, files)


def _memmap(path: Path, rows: int, dim: int) -> Vectors:
    """A float32 ``.npy`` file opened for writing (saved empty for zero rows: mmap can't)."""
    if rows == 0:
        empty = np.zeros((0, dim), dtype=np.float32)
        np.save(path, empty)
        return empty
    out: Vectors = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, dim))
    return out


def _write_documents(path: Path, documents: list[DocumentInfo]) -> None:
    """The same JSON as ``write_snapshot``, written one document at a time."""
    with path.open("w", encoding="utf-8") as handle:
        handle.write("[")
        for number, d in enumerate(documents):
            record = {"id": d.doc_id, "title": d.title, "path": d.path, "sha256": d.sha256}
            record["text"] = d.text
            handle.write(("," if number else "") + json.dumps(record, ensure_ascii=False))
        handle.write("]")
