"""Per-document checkpoints of embedded passages and sentences, for FAISS builds.

FAISS has no notion of deleting or updating one document's rows in a flat file,
so an incremental FAISS build rebuilds the index from vectors it already has:
each embedded document is saved as soon as its batch is done, named by its id
and content hash. An unchanged document is never embedded again, and a build
killed at document 5,000 resumes at 5,001. Checkpoints live next to the builds
(``index/work/<fingerprint>/``), outside the published snapshot, and are keyed by
a fingerprint of the model and chunking so a settings change cannot reuse them.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qa.errors import CorruptIndexError
from qa.store.manifest import SCHEMA_VERSION, ChunkingEntry, ModelEntry
from qa.store.protocol import EmbeddedDocument
from qa.store.records import decode_passage, encode_passage
from qa.store.snapshot import DocumentInfo
from qa.types import Span

WORK_DIR = "work"
# What numpy raises for a truncated or corrupted .npz (zip) file.
DAMAGED = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


def fingerprint(model: ModelEntry, chunking: ChunkingEntry) -> str:
    """What embedded vectors depend on: schema, model weights and chunking."""
    key = json.dumps(
        [SCHEMA_VERSION, model.model_dump(), chunking.model_dump()],
        sort_keys=True,
    )
    return hashlib.sha256(key.encode()).hexdigest()[:16]


class CheckpointStore:
    """A folder of ``<doc_id>.<sha16>.npz`` files, each written atomically."""

    def __init__(self, index_dir: Path, model: ModelEntry, chunking: ChunkingEntry) -> None:
        self.root = index_dir / WORK_DIR
        self.folder = self.root / fingerprint(model, chunking)
        self.folder.mkdir(parents=True, exist_ok=True)

    def _path(self, doc_id: str, sha256: str) -> Path:
        return self.folder / f"{doc_id}.{sha256[:16]}.npz"

    def has(self, doc_id: str, sha256: str) -> bool:
        """Whether a readable checkpoint exists; an unreadable one is deleted, to re-embed."""
        path = self._path(doc_id, sha256)
        if not path.is_file():
            return False
        try:  # cheap: the zip directory and one small array, not the vectors
            with np.load(path, allow_pickle=False) as data:
                data["counts"]
        except DAMAGED:
            path.unlink(missing_ok=True)
            return False
        return True

    def write(self, doc: EmbeddedDocument) -> None:
        """Save one document; the rename makes it visible only once complete."""
        final = self._path(doc.info.doc_id, doc.info.sha256)
        temporary = final.with_name(f".{final.name}.tmp")
        records = json.dumps([encode_passage(p) for p in doc.passages], ensure_ascii=False)
        with temporary.open("wb") as handle:
            np.savez(
                handle,
                counts=np.asarray(
                    [len(doc.passages), len(doc.sentence_layout()), doc.tokens], dtype=np.int64
                ),
                records=np.asarray(records),
                passage_vectors=doc.passage_vectors,
                sentences=np.asarray(
                    [[s.start, s.end] for s in doc.sentences], dtype=np.int64
                ).reshape(-1, 2),
                sentence_vectors=doc.sentence_vectors,
            )
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(final)

    def counts(self, info: DocumentInfo) -> tuple[int, int, int]:
        """(passages, passage-sentence rows, tokens) without loading the vectors."""
        path = self._path(info.doc_id, info.sha256)
        try:
            with np.load(path, allow_pickle=False) as data:
                passages, rows, tokens = (int(x) for x in data["counts"])
        except DAMAGED as exc:
            path.unlink(missing_ok=True)
            raise CorruptIndexError(f"checkpoint for {info.doc_id} is damaged: {exc}") from exc
        return passages, rows, tokens

    def read(self, info: DocumentInfo) -> EmbeddedDocument:
        path = self._path(info.doc_id, info.sha256)
        try:
            with np.load(path, allow_pickle=False) as data:
                records = json.loads(str(data["records"]))
                passage_vectors = np.asarray(data["passage_vectors"], dtype=np.float32)
                spans = [Span(int(s), int(e)) for s, e in data["sentences"]]
                sentence_vectors = np.asarray(data["sentence_vectors"], dtype=np.float32)
        except DAMAGED as exc:
            path.unlink(missing_ok=True)
            raise CorruptIndexError(f"checkpoint for {info.doc_id} is damaged: {exc}") from exc
        passages = [decode_passage(r, {info.doc_id: info}) for r in records]
        return EmbeddedDocument(info, passages, passage_vectors, spans, sentence_vectors)

    def discard(self, doc_ids: Sequence[str]) -> None:
        """Delete every checkpoint of these documents, whatever their version."""
        for doc_id in doc_ids:
            for path in self.folder.glob(f"{glob.escape(doc_id)}.*.npz"):
                path.unlink(missing_ok=True)

    def prune(self, keep: Sequence[DocumentInfo]) -> int:
        """Delete checkpoints of removed or changed documents and of other settings."""
        wanted = {self._path(d.doc_id, d.sha256).name for d in keep}
        removed = 0
        for path in self.folder.iterdir():
            if path.name not in wanted:
                path.unlink(missing_ok=True)
                removed += 1
        for other in self.root.iterdir():
            if other != self.folder:
                shutil.rmtree(other, ignore_errors=True)
        return removed

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True, exist_ok=True)
