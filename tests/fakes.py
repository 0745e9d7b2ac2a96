"""A tiny deterministic embedder for tests that are not about the model."""

from __future__ import annotations

import hashlib
import re

import numpy as np

from qa.embedding import Vectors

_WORD = re.compile(r"\w+")


class FakeEmbedder:
    """Hashed bag of words: texts sharing words get similar unit vectors."""

    def __init__(self, dim: int = 64, max_seq_length: int = 256, model_id: str = "fake") -> None:
        self._dim = dim
        self._max = max_seq_length
        self._id = model_id

    @property
    def model_id(self) -> str:
        return self._id

    @property
    def weights_hash(self) -> str:
        return hashlib.sha256(self._id.encode()).hexdigest()

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def max_seq_length(self) -> int:
        return self._max

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + 2

    def encode(self, texts: list[str], batch_size: int = 32) -> Vectors:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                bucket = int(hashlib.md5(word.encode()).hexdigest(), 16) % self._dim
                out[row, bucket] += 1.0
            norm = np.linalg.norm(out[row])
            out[row] = out[row] / norm if norm else out[row]
            if not norm:
                out[row, 0] = 1.0
        return out
