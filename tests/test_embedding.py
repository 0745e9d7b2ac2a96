"""The real model is shared by a serving service and a rebuild: one thread runs it."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from qa.embedding import SentenceTransformerEmbedder
from tests.helpers import ESSAY


def test_the_tokenizer_runs_on_the_model_thread_whichever_thread_asks(
    embedder: SentenceTransformerEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    real = embedder._count_tokens

    def counting(text: str) -> int:
        seen.append(threading.get_ident())
        return real(text)

    monkeypatch.setattr(embedder, "_count_tokens", counting)
    assert embedder.count_tokens("Is the Sino-Russian relationship an alliance?") == 11
    assert seen == [embedder._model_thread_id] != [threading.get_ident()]


def test_counting_and_encoding_from_two_threads_at_once(
    embedder: SentenceTransformerEmbedder,
) -> None:
    """What a reload does: a build counts tokens while the batcher encodes questions."""
    sentences = [s for s in ESSAY.read_text(encoding="utf-8").split(". ") if s.strip()][:200]
    with ThreadPoolExecutor(2) as pool:
        counts = pool.submit(lambda: [embedder.count_tokens(s) for s in sentences])
        vectors = pool.submit(lambda: [embedder.encode([s]) for s in sentences[:40]])
        assert len(counts.result()) == len(sentences) and all(n > 2 for n in counts.result())
        assert all(v.shape == (1, embedder.dim) for v in vectors.result())
