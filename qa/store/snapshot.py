"""A built index as one immutable snapshot on disk, published atomically.

Layout of ``index_dir``::

    current -> builds/<build-id>      symlink, swapped atomically
    builds/<build-id>/manifest.json   what it was built from, with file checksums
    builds/<build-id>/vectors.faiss   passage vectors
    builds/<build-id>/passages.jsonl  passages with their citations
    builds/<build-id>/documents.json  document metadata and text (for span checks)
    builds/<build-id>/sentences.npy   sentence vectors, for quotes (memory-mapped at load)
    builds/<build-id>/sentence_rows.npy  rows of each passage's sentences in sentences.npy
    builds/<build-id>/bm25/           keyword index

A build is written into a temporary folder and only then made ``current``, so
an interrupted build leaves the previous index untouched.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from qa.embedding import Vectors
from qa.errors import CorruptIndexError, IndexMissingError
from qa.retrieval.bm25 import BM25Index
from qa.store.manifest import MANIFEST_FILE, Manifest, file_sha256
from qa.store.vectors import FaissVectorStore, VectorStore
from qa.types import Document, Passage, Span

log = logging.getLogger(__name__)

CURRENT = "current"
BUILDS = "builds"
PASSAGES_FILE = "passages.jsonl"
DOCUMENTS_FILE = "documents.json"
SENTENCES_FILE = "sentences.npy"
SENTENCE_ROWS_FILE = "sentence_rows.npy"


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


def passage_record(p: Passage) -> dict[str, object]:
    """A passage as plain JSON: how every backend stores it."""
    return _passage_record(p)


def passage_from(record: dict[str, object], documents: dict[str, DocumentInfo]) -> Passage:
    """A passage back from its record, checked against its document's text."""
    return _passage_from(record, documents)


def _passage_record(p: Passage) -> dict[str, object]:
    return {
        "id": p.passage_id,
        "doc_id": p.doc_id,
        "title": p.title,
        "section": p.section,
        "paragraphs": list(p.paragraphs),
        "start": p.start,
        "end": p.end,
        "lines": [p.line_start, p.line_end],
        "tokens": p.token_count,
        "sentences": [[s.start, s.end] for s in p.sentences],
        "text": p.text,
    }


def _passage_from(record: dict[str, object], documents: dict[str, DocumentInfo]) -> Passage:
    r = record
    lines = r["lines"]
    sentences = r["sentences"]
    assert isinstance(lines, list) and isinstance(sentences, list)
    passage = Passage(
        passage_id=str(r["id"]),
        doc_id=str(r["doc_id"]),
        title=str(r["title"]),
        section=str(r["section"]),
        paragraphs=tuple(int(x) for x in r["paragraphs"]),  # type: ignore[attr-defined]
        start=int(r["start"]),  # type: ignore[call-overload]
        end=int(r["end"]),  # type: ignore[call-overload]
        line_start=int(lines[0]),
        line_end=int(lines[1]),
        text=str(r["text"]),
        token_count=int(r["tokens"]),  # type: ignore[call-overload]
        sentences=tuple(Span(int(s), int(e)) for s, e in sentences),
    )
    doc = documents.get(passage.doc_id)
    if doc is None or doc.text[passage.start : passage.end] != passage.text:
        raise CorruptIndexError(f"passage {passage.passage_id} does not match its document")
    return passage


def write_snapshot(
    folder: Path,
    manifest: Manifest,
    documents: list[DocumentInfo],
    passages: list[Passage],
    vectors: VectorStore,
    bm25: BM25Index,
    sentence_vectors: Vectors,
    sentence_rows: list[int],
) -> Manifest:
    """Write every file, then the manifest with their checksums (last, so it seals the build)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = [*vectors.save(folder), *bm25.save(folder)]
    with (folder / PASSAGES_FILE).open("w", encoding="utf-8") as handle:
        for passage in passages:
            handle.write(json.dumps(_passage_record(passage), ensure_ascii=False) + "\n")
    docs = [
        {"id": d.doc_id, "title": d.title, "path": d.path, "sha256": d.sha256, "text": d.text}
        for d in documents
    ]
    (folder / DOCUMENTS_FILE).write_text(json.dumps(docs, ensure_ascii=False), encoding="utf-8")
    np.save(folder / SENTENCES_FILE, sentence_vectors, allow_pickle=False)
    np.save(folder / SENTENCE_ROWS_FILE, np.asarray(sentence_rows, dtype=np.int64))
    files += [PASSAGES_FILE, DOCUMENTS_FILE, SENTENCES_FILE, SENTENCE_ROWS_FILE]
    return seal(folder, manifest, files)


def seal(folder: Path, manifest: Manifest, files: list[str]) -> Manifest:
    """Write the manifest with the checksums of ``files``: the last step of a build."""
    sealed = manifest.model_copy(update={"files": {f: file_sha256(folder / f) for f in files}})
    _fsync_write(folder / MANIFEST_FILE, sealed.model_dump_json(indent=2))
    return sealed


def _fsync_write(path: Path, text: str) -> None:
    with path.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def read_manifest(folder: Path) -> Manifest:
    path = folder / MANIFEST_FILE
    try:
        return Manifest.model_validate_json(path.read_bytes())
    except FileNotFoundError as exc:
        raise CorruptIndexError(f"{path} is missing") from exc
    except (ValidationError, ValueError) as exc:
        raise CorruptIndexError(f"{path} is corrupt: {exc.__class__.__name__}") from exc


def verify_files(folder: Path, manifest: Manifest) -> None:
    """Check every file against the checksum the manifest sealed in."""
    for name, expected in manifest.files.items():
        path = folder / name
        if not path.is_file():
            raise CorruptIndexError(f"{path} is missing")
        if file_sha256(path) != expected:
            raise CorruptIndexError(f"{path} is corrupt (checksum mismatch)")


def load_snapshot(folder: Path) -> Snapshot:
    """Load and verify a snapshot; any damage raises ``CorruptIndexError`` naming the file."""
    manifest = read_manifest(folder)
    verify_files(folder, manifest)
    try:
        raw_docs = json.loads((folder / DOCUMENTS_FILE).read_text(encoding="utf-8"))
        documents = {
            d["id"]: DocumentInfo(d["id"], d["title"], d["path"], d["sha256"], d["text"])
            for d in raw_docs
        }
        with (folder / PASSAGES_FILE).open(encoding="utf-8") as handle:
            passages = [_passage_from(json.loads(line), documents) for line in handle]
        # Memory-mapped: a large collection's sentence vectors stay on disk until used.
        sentence_vectors = np.load(folder / SENTENCES_FILE, mmap_mode="r", allow_pickle=False)
        sentence_rows = np.load(folder / SENTENCE_ROWS_FILE, allow_pickle=False).tolist()
        spec = manifest.vector_store.removeprefix("faiss:")
        vectors = FaissVectorStore.load(folder, spec)
        bm25 = BM25Index.load(folder)
    except CorruptIndexError:
        raise
    except Exception as exc:  # any parse failure means a damaged build
        raise CorruptIndexError(f"index in {folder} cannot be read: {exc}") from exc
    if len(vectors) != len(passages) or len(sentence_rows) != len(passages) + 1:
        raise CorruptIndexError(f"index in {folder} has mismatched passage counts")
    return Snapshot(manifest, documents, passages, vectors, bm25, sentence_vectors, sentence_rows)


def current_build(index_dir: Path) -> Path:
    """The folder of the published build, or ``IndexMissingError``."""
    link = index_dir / CURRENT
    if not link.exists():
        raise IndexMissingError(f"no index yet in {index_dir}")
    return link.resolve()


def new_build_folder(index_dir: Path) -> Path:
    """A fresh temporary folder on the same file system as the published builds."""
    builds = index_dir / BUILDS
    builds.mkdir(parents=True, exist_ok=True)
    return builds / f".tmp-{uuid.uuid4().hex[:12]}"


def publish(index_dir: Path, temporary: Path) -> Path:
    """Make a finished build current with atomic renames; remove older builds."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    final = temporary.with_name(f"{stamp}-{uuid.uuid4().hex[:8]}")
    temporary.rename(final)
    _fsync_dir(final.parent)
    link = index_dir / CURRENT
    tmp_link = index_dir / f".{CURRENT}-{uuid.uuid4().hex[:8]}"
    tmp_link.symlink_to(Path(BUILDS) / final.name)
    tmp_link.replace(link)
    _fsync_dir(index_dir)
    for old in (index_dir / BUILDS).iterdir():
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
