"""FAISS: the index as files in ``index_dir`` (the default store)."""

from qa.store.faiss.store import FaissStore

__all__ = ["FaissStore"]
