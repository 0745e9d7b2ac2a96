"""How search costs grow with the corpus: synthetic vectors from 10^3 to 10^6 passages.

For each size the index that ``choose_index_spec`` picks is built and compared
with exact search: build time, index memory, single-query search p50/p99 and
recall@10 against ``Flat``.

The synthetic vectors are random unit vectors drawn from an anisotropic Gaussian
(eigenvalues ~ 1/i, like sentence embeddings, in a random rotation). Isotropic
i.i.d. unit vectors would be the wrong yardstick: in 384 dimensions every point
is about equally far from every other, the exact top 10 is a near-tie, and no
approximate index can recover it (HNSW reaches recall@10 ~0.25 at efSearch=64
on 10^5 of them), while real embeddings have strong neighbourhood structure.
A sample of real embeddings (the essay's sentences, asked with the labelled
questions) is planted in every corpus and its recall reported separately.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from qa.bench.stats import percentiles
from qa.store.vectors import FaissVectorStore, choose_index_spec

F32 = npt.NDArray[np.float32]
DIM = 384


@dataclass(frozen=True, slots=True)
class ScalingRow:
    passages: int
    spec: str
    build_s: float
    memory_mb: float
    bytes_per_vector: float
    search_p50_ms: float
    search_p99_ms: float
    flat_p50_ms: float
    recall_at_10: float
    real_recall_at_10: float
    sweep: list[dict[str, Any]] = field(default_factory=list)  # search knob -> recall, speed


def synthetic(n: int, rng: np.random.Generator, dim: int = DIM, alpha: float = 1.0) -> F32:
    """``n`` random unit vectors with a power-law spectrum (see the module docstring)."""
    scale = (np.arange(1, dim + 1, dtype=np.float32) ** (-alpha / 2)).astype(np.float32)
    rotation = np.linalg.qr(np.random.default_rng(12345).standard_normal((dim, dim)))[0]
    rotation = rotation.astype(np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    step = 100_000
    for begin in range(0, n, step):
        size = min(step, n - begin)
        block = rng.standard_normal((size, dim), dtype=np.float32) * scale
        block = block @ rotation.T
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[begin : begin + size] = block
    return out


def recall_at(found: npt.NDArray[np.int64], truth: npt.NDArray[np.int64], k: int = 10) -> float:
    hits = [
        len(set(f[:k].tolist()) & set(t[:k].tolist())) / k
        for f, t in zip(found, truth, strict=True)
    ]
    return float(np.mean(hits)) if hits else float("nan")


def _latencies(store: FaissVectorStore, queries: F32, k: int = 10) -> list[float]:
    out = []
    for row in range(len(queries)):
        started = time.perf_counter()
        store.search(queries[row : row + 1], k)
        out.append((time.perf_counter() - started) * 1000)
    return out


def index_bytes(store: FaissVectorStore) -> int:
    import faiss

    return int(faiss.serialize_index(store._index).nbytes)


def measure(
    n: int,
    real_corpus: F32 | None = None,
    real_queries: F32 | None = None,
    queries: int = 200,
    seed: int = 0,
    spec: str | None = None,
    log: Callable[[str], None] = print,
    sweep: bool = False,
) -> ScalingRow:
    """Build the chosen index over ``n`` vectors and measure it against exact search."""
    rng = np.random.default_rng(seed)
    vectors = synthetic(n, rng)
    planted = 0
    if real_corpus is not None and len(real_corpus):
        planted = min(len(real_corpus), n // 2)
        rows = rng.choice(n, planted, replace=False)
        vectors[rows] = real_corpus[:planted]
    probe = synthetic(queries, np.random.default_rng(seed + 1))
    spec = spec or choose_index_spec(n)
    log(f"scaling n={n}: building {spec}")
    started = time.perf_counter()
    store = FaissVectorStore.build(vectors, spec)
    build_s = time.perf_counter() - started
    flat = store if spec == "Flat" else FaissVectorStore.build(vectors, "Flat")
    size = index_bytes(store)
    _, truth = flat.search(probe, 10)
    _, found = store.search(probe, 10)
    real_recall = float("nan")
    real_truth = truth
    if real_queries is not None and planted:
        _, real_truth = flat.search(real_queries, 10)
        _, real_found = store.search(real_queries, 10)
        real_recall = recall_at(real_found, real_truth)
    store.search(probe[:10], 10)  # warm caches
    lat = percentiles(_latencies(store, probe))
    flat_lat = lat if flat is store else percentiles(_latencies(flat, probe[:50]))
    swept_rows = []
    for params in sweep_params(spec) if sweep else ():
        store.set_params(params)
        swept: dict[str, Any] = {
            "params": params,
            "recall_at_10": recall_at(store.search(probe, 10)[1], truth),
        }
        if real_queries is not None and planted:
            swept["real_recall_at_10"] = recall_at(store.search(real_queries, 10)[1], real_truth)
        ef_lat = percentiles(_latencies(store, probe[:100]))
        swept.update(search_p50_ms=ef_lat["p50"], search_p99_ms=ef_lat["p99"])
        swept_rows.append(swept)
        log(f"scaling n={n}: {swept}")
    row = ScalingRow(
        passages=n,
        spec=spec,
        build_s=build_s,
        memory_mb=size / 2**20,
        bytes_per_vector=size / n,
        search_p50_ms=lat["p50"],
        search_p99_ms=lat["p99"],
        flat_p50_ms=flat_lat["p50"],
        recall_at_10=recall_at(found, truth),
        real_recall_at_10=real_recall,
        sweep=swept_rows,
    )
    log(f"scaling n={n}: {asdict(row)}")
    return row


def sweep_params(spec: str) -> list[str]:
    """Search-time settings around the chosen one, to show the recall/speed trade-off."""
    factory, _, chosen = spec.partition("|")
    if factory.startswith("HNSW"):
        return [f"efSearch={ef}" for ef in (64, 128, 256, 512)]
    if factory.startswith("IVF"):
        nlist = int(factory[3:].split(",")[0].split("_")[0])
        rerank = [p for p in chosen.split(",") if p.startswith("k_factor_rf=")]
        return [",".join([f"nprobe={nlist // share}", *rerank]) for share in (64, 32, 16, 8)]
    return []


def real_sample(embedder: Any, texts: list[str], questions: list[str]) -> tuple[F32, F32]:
    """Real embeddings to plant (passage/sentence texts) and to query with (questions)."""
    corpus = embedder.encode(texts, batch_size=64)
    asked = embedder.encode(questions, batch_size=64)
    return np.ascontiguousarray(corpus, np.float32), np.ascontiguousarray(asked, np.float32)
