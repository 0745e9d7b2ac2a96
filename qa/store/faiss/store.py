"""The FAISS store: build folders in ``index_dir``, assembled from per-document checkpoints.

Documents are committed as checkpoints (``checkpoints.py``) as soon as they are
embedded; ``publish`` streams them into a new build folder, seals it and makes
it current (``folders.py``). Nothing outside this package knows these files.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qa.embedding import Vectors
from qa.keywords import BM25Index
from qa.store.faiss.checkpoints import CheckpointStore
from qa.store.faiss.folders import (
    DOCUMENTS_FILE,
    PASSAGES_FILE,
    SENTENCE_ROWS_FILE,
    SENTENCES_FILE,
    current_build,
    load_snapshot,
    new_build_folder,
    publish,
    read_manifest,
    seal,
    verify_files,
)
from qa.store.manifest import ChunkingEntry, DocumentEntry, Manifest, ModelEntry, make_manifest
from qa.store.protocol import EmbeddedDocument, Published
from qa.store.records import encode_passage
from qa.store.snapshot import DocumentInfo, Snapshot
from qa.store.vectors import FaissVectorStore, choose_index_spec
from qa.types import Progress

WRITE_STAGE = "writing index"


class FaissStore:
    """Immutable snapshot folders in ``index_dir``; vectors kept per document for reuse."""

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = index_dir
        self._checkpoints: CheckpointStore | None = None
        self._model: ModelEntry | None = None
        self._chunking: ChunkingEntry | None = None

    @property
    def location(self) -> str:
        return str(self.index_dir)

    def published_manifest(self) -> Manifest:
        return read_manifest(current_build(self.index_dir))

    def load(self) -> Snapshot:
        return load_snapshot(current_build(self.index_dir))

    def verify(self) -> None:
        """Checksum every file of the published build."""
        folder = current_build(self.index_dir)
        verify_files(folder, read_manifest(folder))

    def begin(self, model: ModelEntry, chunking: ChunkingEntry, reset: bool = False) -> None:
        # Checkpoints are kept per model and chunking: other settings never match.
        self._checkpoints = CheckpointStore(self.index_dir, model, chunking)
        self._model, self._chunking = model, chunking
        if reset:
            self._checkpoints.clear()

    @property
    def checkpoints(self) -> CheckpointStore:
        if self._checkpoints is None:
            raise RuntimeError("FaissStore.begin() must be called before writing")
        return self._checkpoints

    def has(self, doc_id: str, sha256: str) -> bool:
        return self.checkpoints.has(doc_id, sha256)

    def commit(self, batch: Sequence[EmbeddedDocument]) -> None:
        for doc in batch:
            self.checkpoints.write(doc)  # committed: a crash after this never re-embeds it

    def delete(self, doc_ids: Sequence[str]) -> None:
        self.checkpoints.discard(doc_ids)

    def publish(self, documents: Sequence[DocumentInfo], progress: Progress) -> Published:
        assert self._model is not None and self._chunking is not None
        temporary = new_build_folder(self.index_dir)
        manifest = _write_build(
            temporary, documents, self.checkpoints, self._model, self._chunking, progress
        )
        folder = publish(self.index_dir, temporary)
        self.checkpoints.prune(documents)
        return Published(manifest, str(folder), folder)

    def close(self) -> None:
        return None


def _write_build(
    folder: Path,
    documents: Sequence[DocumentInfo],
    checkpoints: CheckpointStore,
    model: ModelEntry,
    chunking: ChunkingEntry,
    progress: Progress,
) -> Manifest:
    """Write a build folder streaming one document at a time from its checkpoint.

    Vectors go straight into memory-mapped ``.npy`` files, so peak memory is the
    FAISS index itself plus one document, never a Python list of every vector.
    """
    folder.mkdir(parents=True, exist_ok=True)
    counts = {d.doc_id: checkpoints.counts(d) for d in documents}
    total_passages = sum(c[0] for c in counts.values())
    total_rows = sum(c[1] for c in counts.values())
    scratch = folder / "passage-vectors.tmp.npy"
    passage_vectors = _memmap(scratch, total_passages, model.dim)
    sentence_vectors = _memmap(folder / SENTENCES_FILE, total_rows, model.dim)
    sentence_rows = [0]
    texts: list[str] = []
    entries: dict[str, DocumentEntry] = {}
    p_row = s_row = 0
    with (folder / PASSAGES_FILE).open("w", encoding="utf-8") as handle:
        for number, info in enumerate(documents, 1):
            doc = checkpoints.read(info)
            n = len(doc.passages)
            passage_vectors[p_row : p_row + n] = doc.passage_vectors
            layout = doc.sentence_layout()
            sentence_vectors[s_row : s_row + len(layout)] = doc.sentence_vectors[layout]
            for passage, rows in zip(doc.passages, doc.sentence_counts(), strict=True):
                handle.write(json.dumps(encode_passage(passage), ensure_ascii=False) + "\n")
                texts.append(passage.keyword_text)
                sentence_rows.append(sentence_rows[-1] + rows)
            entries[info.doc_id] = DocumentEntry(path=info.path, sha256=info.sha256, passages=n)
            p_row += n
            s_row += len(layout)
            progress(WRITE_STAGE, number, len(documents))
    vectors = FaissVectorStore.build(passage_vectors, choose_index_spec(total_passages))
    del passage_vectors
    scratch.unlink(missing_ok=True)
    if isinstance(sentence_vectors, np.memmap):
        sentence_vectors.flush()
    del sentence_vectors
    np.save(folder / SENTENCE_ROWS_FILE, np.asarray(sentence_rows, dtype=np.int64))
    _write_documents(folder / DOCUMENTS_FILE, documents)
    bm25 = BM25Index.build(texts)
    files = [
        *vectors.save(folder),
        *bm25.save(folder),
        PASSAGES_FILE,
        DOCUMENTS_FILE,
        SENTENCES_FILE,
        SENTENCE_ROWS_FILE,
    ]
    manifest = make_manifest(
        model,
        chunking,
        f"faiss:{vectors.spec}",
        entries,
        tokens=sum(c[2] for c in counts.values()),
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


def _write_documents(path: Path, documents: Sequence[DocumentInfo]) -> None:
    """``documents.json``, written one document at a time."""
    with path.open("w", encoding="utf-8") as handle:
        handle.write("[")
        for number, d in enumerate(documents):
            record = {"id": d.doc_id, "title": d.title, "path": d.path, "sha256": d.sha256}
            record["text"] = d.text
            handle.write(("," if number else "") + json.dumps(record, ensure_ascii=False))
        handle.write("]")
