"""Vector stores behind one small interface, so another backend can be added."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from qa.embedding import Vectors

Scores = npt.NDArray[np.float32]
Ids = npt.NDArray[np.int64]


class VectorStore(Protocol):
    """Inner-product search over unit vectors; row ``i`` is passage ``i``."""

    @property
    def spec(self) -> str:
        """What kind of index this is, as recorded in the manifest (e.g. ``Flat``)."""
        ...

    def __len__(self) -> int: ...

    def search(self, queries: Vectors, k: int) -> tuple[Scores, Ids]:
        """Top ``k`` rows per query, best first; missing results have id -1."""
        ...

    def save(self, folder: Path) -> list[str]:
        """Write the store into ``folder``; return the file names written."""
        ...


FAISS_FILE = "vectors.faiss"


class FaissVectorStore:
    """In-process FAISS index over normalized vectors (exact by default)."""

    def __init__(self, index: Any, spec: str) -> None:
        self._index = index
        self._spec = spec

    @classmethod
    def build(cls, vectors: Vectors, spec: str = "Flat") -> FaissVectorStore:
        import faiss

        dim = vectors.shape[1]
        index = faiss.index_factory(dim, spec, faiss.METRIC_INNER_PRODUCT)
        if not index.is_trained:
            index.train(vectors)
        if len(vectors):
            index.add(vectors)
        return cls(index, spec)

    @classmethod
    def load(cls, folder: Path, spec: str) -> FaissVectorStore:
        import faiss

        return cls(faiss.read_index(str(folder / FAISS_FILE)), spec)

    @property
    def spec(self) -> str:
        return self._spec

    @property
    def dim(self) -> int:
        return int(self._index.d)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def search(self, queries: Vectors, k: int) -> tuple[Scores, Ids]:
        k = max(1, min(k, len(self)))
        if len(self) == 0:
            empty = np.zeros((len(queries), 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        scores, ids = self._index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return scores.astype(np.float32), ids.astype(np.int64)

    def save(self, folder: Path) -> list[str]:
        import faiss

        faiss.write_index(self._index, str(folder / FAISS_FILE))
        return [FAISS_FILE]
