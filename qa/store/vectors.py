"""Vector stores behind one small interface, so another backend can be added."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from qa.embedding import Vectors
from qa.types import DocumentScope

Scores = npt.NDArray[np.float32]
Ids = npt.NDArray[np.int64]


class VectorStore(Protocol):
    """Inner-product search over unit vectors; row ``i`` is passage ``i``."""

    @property
    def spec(self) -> str:
        """What kind of index this is, as recorded in the manifest (e.g. ``Flat``)."""
        ...

    def __len__(self) -> int: ...

    def search(
        self, queries: Vectors, k: int, scope: DocumentScope | None = None
    ) -> tuple[Scores, Ids]:
        """Top ``k`` rows per query, best first; missing results have id -1.

        With a ``scope``, only rows of its documents are returned.
        """
        ...

    def save(self, folder: Path) -> list[str]:
        """Write the store into ``folder``; return the file names written."""
        ...

    def close(self) -> None:
        """Release what the store holds open (a client, memory); searching after is an error."""
        ...


FAISS_FILE = "vectors.faiss"

# Index choice by corpus size, measured with `qa bench --scaling` on this 2-core
# machine (bench/results/bench.md). Exact search costs ~0.1 us per vector per
# query, so Flat stays near 1 ms up to FLAT_MAX rows. Up to HNSW_MAX, HNSW32 with
# efSearch 128 gave recall@10 0.973 at 10^5 and builds in seconds. Beyond it HNSW
# stops paying: at 10^6 it took 20 minutes to build and reached 0.931 at efSearch
# 256 (0.971 only at 512, 14 ms). An inverted file with 8-bit scalar-quantised
# codes, re-ranked by the exact vectors, builds in under a minute and reached
# recall@10 0.990 at 2.7 ms p50 (nlist 4096, nprobe 256, 4 candidates per result
# re-ranked). nlist grows as ~4 sqrt(N) and nprobe is nlist / 16.
FLAT_MAX = 20_000
HNSW_MAX = 200_000
HNSW_SPEC = "HNSW32|efConstruction=40,efSearch=128"
# A scoped search scores up to this many rows exactly (their vectors copied out of
# the index); a larger scope searches the whole index more deeply and filters.
SCOPE_EXACT_MAX = FLAT_MAX
IVF_PROBE_SHARE = 16  # nprobe = nlist / this
IVF_RERANK = 4  # k_factor_rf: re-rank this many SQ8 candidates per requested result
TRAIN_PER_LIST = 64  # k-means sample: faiss wants 39 to 256 points per centroid


def ivf_spec(passages: int) -> str:
    """An IVF spec sized for ``passages`` rows (see the measurements above)."""
    nlist = 2 ** round(math.log2(4 * math.sqrt(max(passages, 1))))
    return (
        f"IVF{nlist},SQ8,RFlat|nprobe={max(nlist // IVF_PROBE_SHARE, 1)},k_factor_rf={IVF_RERANK}"
    )


def choose_index_spec(passages: int) -> str:
    """The FAISS spec for a corpus of ``passages`` rows: exact while it is fast enough.

    The spec is ``<index_factory string>|<parameters>``, recorded in the manifest
    as ``faiss:<spec>`` so a reader knows exactly which index answered.
    """
    if passages <= FLAT_MAX:
        return "Flat"
    return HNSW_SPEC if passages <= HNSW_MAX else ivf_spec(passages)


def _split_spec(spec: str) -> tuple[str, dict[str, str]]:
    factory, _, params = spec.partition("|")
    pairs = (item.split("=", 1) for item in params.split(",") if item.strip())
    return factory.strip(), {key.strip(): value.strip() for key, value in pairs}


def _apply_params(index: Any, params: dict[str, str]) -> None:
    """Set HNSW/IVF knobs (efConstruction, efSearch, nprobe, k_factor_rf) on an index."""
    import faiss

    hnsw = getattr(faiss.downcast_index(index), "hnsw", None)
    for key, value in params.items():
        if key == "efConstruction" and hnsw is not None:
            hnsw.efConstruction = int(value)
        else:
            faiss.ParameterSpace().set_index_parameter(index, key, float(value))


def _training_sample(index: Any, vectors: Vectors) -> Vectors:
    """Enough rows to train an inverted file's k-means; all rows for anything else.

    k-means over every row of a million-row corpus costs minutes and gains nothing.
    The sample is seeded, so the same vectors always give the same index.
    """
    import faiss

    try:
        nlist = int(faiss.extract_index_ivf(index).nlist)
    except RuntimeError:  # not an inverted file
        return vectors
    size = TRAIN_PER_LIST * nlist
    if len(vectors) <= size:
        return vectors
    rows = np.sort(np.random.default_rng(0).choice(len(vectors), size, replace=False))
    return np.ascontiguousarray(vectors[rows])


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
            index.train(_training_sample(index, vectors))
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

    def search(
        self, queries: Vectors, k: int, scope: DocumentScope | None = None
    ) -> tuple[Scores, Ids]:
        k = max(1, min(k, len(self)))
        if len(self) == 0:
            empty = np.zeros((len(queries), 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if scope is not None:
            return self._search_scope(queries, k, scope.rows)
        scores, ids = self._index.search(queries, k)
        return scores.astype(np.float32), ids.astype(np.int64)

    def _search_scope(self, queries: Vectors, k: int, rows: Ids) -> tuple[Scores, Ids]:
        """Top ``k`` among ``rows``: exact over their vectors when few, else over-fetch and filter.

        FAISS's own ID selectors lose most results under HNSW when the scope is small
        (the graph walk meets few allowed nodes) and are refused by the refined IVF index.
        """
        k = min(k, len(rows))
        if k == 0:
            empty = np.zeros((len(queries), 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        if len(rows) <= SCOPE_EXACT_MAX:
            subset = self._index.reconstruct_batch(rows)
            sims = queries @ subset.T
            order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
            return np.take_along_axis(sims, order, 1).astype(np.float32), rows[order]
        depth = min(len(self), k * -(-len(self) // len(rows)) * 2)
        scores, ids = self._index.search(queries, depth)
        allowed = np.isin(ids, rows)
        out_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        out_ids = np.full((len(queries), k), -1, dtype=np.int64)
        for q in range(len(queries)):
            keep = np.flatnonzero(allowed[q])[:k]
            out_scores[q, : len(keep)] = scores[q, keep]
            out_ids[q, : len(keep)] = ids[q, keep]
        return out_scores, out_ids

    def save(self, folder: Path) -> list[str]:
        import faiss

        faiss.write_index(self._index, str(folder / FAISS_FILE))
        return [FAISS_FILE]

    def close(self) -> None:
        """Nothing is held open; the index's memory goes with the last reference."""
