"""The floor: the bare model and the FAISS index in a fresh process, and nothing else.

Run as ``python -m qa.bench.floor BUILD_FOLDER QUESTIONS_JSON COUNT MODEL BACKEND
THREADS CACHE_DIR``; prints the per-question latencies as JSON. A process of its
own, with the libraries' defaults, because torch's OpenMP threads behave
differently once a process has run torch on more than one thread (as the
benchmark process has): measured in there, the floor came out slower, which
flattered the service.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

WARM_UP = 5


def encoder(model: str, backend: str, threads: int, cache_dir: Path) -> Any:
    """A callable that encodes a list of texts, as bare as the backend allows."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if backend == "onnx":  # no "bare" ONNX model exists: the exported one is ours
        from qa.embedding_onnx import OnnxEmbedder

        return OnnxEmbedder(model, threads, cache_dir).encode
    import torch
    from sentence_transformers import SentenceTransformer

    from qa.embedding import bundled_model_path

    if threads > 0:
        torch.set_num_threads(threads)
    bare = SentenceTransformer(model or str(bundled_model_path()), device="cpu")
    return lambda texts: bare.encode(texts, normalize_embeddings=True, show_progress_bar=False)


def measure(build: Path, questions: list[str], count: int, encode: Any) -> list[float]:
    """Encode one question and search the index, ``count`` times; milliseconds each."""
    import faiss

    index = faiss.read_index(str(build / "vectors.faiss"))
    for question in questions[:WARM_UP]:
        index.search(encode([question]), 10)
    out = []
    for number in range(count):
        started = time.perf_counter()
        index.search(encode([questions[number % len(questions)]]), 10)
        out.append((time.perf_counter() - started) * 1000)
    return out


def main(argv: list[str]) -> None:
    build, questions_path, count, model, backend, threads, cache_dir = argv[:7]
    questions = json.loads(Path(questions_path).read_text(encoding="utf-8"))
    encode = encoder(model, backend, int(threads), Path(cache_dir))
    print(json.dumps(measure(Path(build), questions, int(count), encode)))


if __name__ == "__main__":
    main(sys.argv[1:])
