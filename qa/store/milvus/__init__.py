"""Milvus: the index as collections (Milvus Lite from a file URI, or a server)."""

from qa.store.milvus.store import MilvusStore

__all__ = ["MilvusStore"]
