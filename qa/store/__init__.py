"""Persistence of a built index (vectors, passages, keyword index, manifest) behind ``Store``.

- ``faiss`` (default): an immutable snapshot folder in ``index_dir`` published
  atomically, rebuilt incrementally from per-document checkpoints.
- ``milvus``: collections in Milvus (Milvus Lite from a file URI, or a server),
  updated in place per document; a replica needs nothing from the local disk.
- ``memory``: what evaluation variants build; nothing is written.

All load the same ``Snapshot`` for the service, so ranking, citations, quotes,
BM25, fusion and abstention do not know which store answered. This package
imports nothing from the build pipeline, ranking, the service or the edges.
"""

from __future__ import annotations

from qa.config import Settings
from qa.store.protocol import EmbeddedDocument, Published, Store


def open_store(settings: Settings) -> Store:
    """The store named by ``settings.vector_store``."""
    if settings.vector_store == "faiss":
        from qa.store.faiss import FaissStore

        return FaissStore(settings.index_dir)
    from qa.store.milvus import MilvusStore

    return MilvusStore(settings.vector_store, settings.milvus_collection_prefix)


__all__ = ["EmbeddedDocument", "Published", "Store", "open_store"]
