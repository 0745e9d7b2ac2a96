"""The index manifest: what an index was built from, and how to tell it is stale."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from qa.config import ChunkSettings

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


def stale_reasons(
    manifest: Manifest,
    seeds: dict[str, DocumentEntry],
    chunking: ChunkSettings,
    model_id: str,
    weights_sha256: str | None = None,
) -> list[str]:
    """Why an index no longer matches the seeds and settings; empty when it is current."""
    reasons: list[str] = []
    if manifest.schema_version != SCHEMA_VERSION:
        reasons.append(f"index schema {manifest.schema_version} != {SCHEMA_VERSION}")
    if manifest.model.model_id != model_id:
        reasons.append(f"model changed ({manifest.model.model_id} -> {model_id})")
    elif weights_sha256 is not None and manifest.model.weights_sha256 != weights_sha256:
        reasons.append("model weights changed")
    if manifest.chunking != ChunkingEntry.of(chunking):
        reasons.append(
            "chunking settings changed "
            f"({manifest.chunking.model_dump()} -> {ChunkingEntry.of(chunking).model_dump()})"
        )
    built = {doc_id: entry.sha256 for doc_id, entry in manifest.documents.items()}
    current = {doc_id: entry.sha256 for doc_id, entry in seeds.items()}
    added = sorted(current.keys() - built.keys())
    removed = sorted(built.keys() - current.keys())
    changed = sorted(d for d in current.keys() & built.keys() if current[d] != built[d])
    if added:
        reasons.append("new documents: " + ", ".join(added))
    if removed:
        reasons.append("removed documents: " + ", ".join(removed))
    if changed:
        reasons.append("changed documents: " + ", ".join(changed))
    return reasons
