"""The index manifest: what an index was built from, and how to tell it is stale."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from qa.config import ChunkSettings
from qa.version import __version__

SCHEMA_VERSION = 3  # 2: sentence rows in their own file; incremental builds; 3: BM25 stoplist
MANIFEST_FILE = "manifest.json"


class DocumentEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str
    sha256: str
    passages: int = 0


class ChunkingEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    chunk_tokens: int
    overlap: int
    encoding: str

    @classmethod
    def of(cls, settings: ChunkSettings) -> ChunkingEntry:
        return cls(
            chunk_tokens=settings.chunk_tokens,
            overlap=settings.overlap,
            encoding=settings.encoding,
        )


class ModelEntry(BaseModel):
    model_config = ConfigDict(frozen=True, protected_namespaces=())

    model_id: str
    weights_sha256: str
    dim: int
    max_seq_length: int


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    schema_version: int
    package_version: str
    built_at: str
    model: ModelEntry
    chunking: ChunkingEntry
    vector_store: str  # e.g. "faiss:Flat"
    documents: dict[str, DocumentEntry]
    passages: int
    tokens: int
    files: dict[str, str]  # file name -> sha256, checked at load

    @staticmethod
    def now() -> str:
        return datetime.now(UTC).isoformat(timespec="seconds")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def make_manifest(
    model: ModelEntry,
    chunking: ChunkingEntry,
    vector_store: str,
    documents: dict[str, DocumentEntry],
    tokens: int,
    built_at: str | None = None,
    schema_version: int = SCHEMA_VERSION,
    package_version: str = __version__,
) -> Manifest:
    """The one place a manifest is put together, whatever store holds the index.

    ``files`` starts empty: a store that writes files seals their checksums in.
    """
    return Manifest(
        schema_version=schema_version,
        package_version=package_version,
        built_at=built_at or Manifest.now(),
        model=model,
        chunking=chunking,
        vector_store=vector_store,
        documents=documents,
        passages=sum(e.passages for e in documents.values()),
        tokens=tokens,
        files={},
    )
