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

# Index choice by corpus size, measured with `qa bench --scaling` on this 2-core
# machine (bench/results/bench.md): exact search costs ~0.1 us per vector per
# query, so Flat stays near 1 ms up to FLAT_MAX rows. Beyond it HNSW32: recall@10
# against exact search was 0.973 at 10^5 with efSearch 128, and at 10^6 it was
# 0.931 with efSearch 256 and 0.971 with 512, hence efSearch grows with N.
FLAT_MAX = 20_000
HNSW_SPEC = "HNSW32|efConstruction=40,efSearch=128"
HNSW_LARGE = 200_000
HNSW_LARGE_SPEC = "HNSW32|efConstruction=40,efSearch=512"


def choose_index_spec(passages: int) -> str:
    """The FAISS spec for a corpus of ``passages`` rows: exact while it is fast enough.

    The spec is ``<index_factory string>|<parameters>``, recorded in the manifest
    as ``faiss:<spec>`` so a reader knows exactly which index answered.
    """
    if passages <= FLAT_MAX:
        return "Flat"
    return HNSW_SPEC if passages <= HNSW_LARGE else HNSW_LARGE_SPEC


def _split_spec(spec: str) -> tuple[str, dict[str, str]]:
    factory, _, params = spec.partition("|")
    pairs = (item.split("=", 1) for item in params.split(",") if item.strip())
    return factory.strip(), {key.strip(): value.strip() for key, value in pairs}


def _apply_params(index: Any, params: dict[str, str]) -> None:
    """Set HNSW/IVF knobs (efConstruction, efSearch, nprobe) on a built or loaded index."""
    import faiss

    hnsw = getattr(faiss.downcast_index(index), "hnsw", None)
    for key, value in params.items():
        if key == "efConstruction" and hnsw is not None:
            hnsw.efConstruction = int(value)
        else:
            faiss.ParameterSpace().set_index_parameter(index, key, float(value))


class FaissVectorStore:
    """In-process FAISS index over normalized vectors (exact by default)."""

    def __init__(self, index: Any, spec: str) -> None:
        self._index = index
        self._spec = spec

    @classmethod
    def build(cls, vectors: Vectors, spec: str = "Flat") -> FaissVectorStore:
        import faiss

        dim = vectors.shape[1]
        factory, params = _split_spec(spec)
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
        _apply_params(index, params)
        if not index.is_trained:
            index.train(vectors)
        if len(vectors):
            index.add(vectors)
        return cls(index, spec)

    @classmethod
    def load(cls, folder: Path, spec: str) -> FaissVectorStore:
        import faiss

        index = faiss.read_index(str(folder / FAISS_FILE))
        _apply_params(index, _split_spec(spec)[1])  # efSearch/nprobe; efConstruction is inert
        return cls(index, spec)

    @property
    def spec(self) -> str:
        return self._spec

    def set_params(self, params: str) -> None:
        """Change search-time knobs (``efSearch=256``, ``nprobe=16``) on a live index."""
        _apply_params(self._index, _split_spec("|" + params)[1])

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
