"""The fast query path: micro-batching, the answer cache and index choice by size."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qa.batching import FastAsk, MicroBatcher
from qa.cache import AnswerCache, cache_key
from qa.embedding import Embedder, Vectors
from qa.errors import InvalidQuestionError
from qa.indexing import build_index
from qa.service import QAService
from qa.store.faiss.folders import current_build, load_snapshot, read_manifest
from qa.store.vectors import (
    FLAT_MAX,
    HNSW_MAX,
    HNSW_SPEC,
    TRAIN_PER_LIST,
    FaissVectorStore,
    _training_sample,
    choose_index_spec,
)
from tests.helpers import FakeEmbedder, make_settings


class SlowEmbedder(FakeEmbedder):
    """A fake whose every call takes a while, so concurrent questions pile up; records calls."""

    def __init__(self, delay_s: float = 0.05) -> None:
        super().__init__()
        self.delay_s = delay_s
        self.calls: list[list[str]] = []
        self._lock = threading.Lock()

    def encode(self, texts: list[str], batch_size: int = 32) -> Vectors:
        with self._lock:
            self.calls.append(list(texts))
        time.sleep(self.delay_s)
        return super().encode(texts, batch_size)


@pytest.fixture
def slow_service(project: Path) -> QAService:
    settings = make_settings(project, retriever="dense")
    build_index(settings, FakeEmbedder())
    return QAService.open(settings, SlowEmbedder(), rebuild=False)


QUESTIONS = [
    "Is the Sino-Russian relationship an alliance?",
    "What do American hopes of weaning Moscow away from Beijing amount to?",
    "What is the most probable future scenario for the relationship?",
    "How does China view Russia's war in Ukraine?",
    "What role does energy trade play?",
    "Who benefits from Western sanctions?",
]


def test_micro_batcher_routes_each_result_to_its_caller() -> None:
    calls: list[list[int]] = []

    def handler(items: list[int]) -> list[int | BaseException]:
        calls.append(items)
        time.sleep(0.02)
        return [ValueError(f"bad {i}") if i == 13 else i * 10 for i in items]

    async def main() -> tuple[list[int], BaseException | None]:
        batcher: MicroBatcher[int, int] = MicroBatcher(handler, max_batch=8, wait_ms=5)
        try:
            good = await asyncio.gather(*(batcher.submit(i) for i in range(40) if i != 13))
            failure: BaseException | None = None
            try:
                await batcher.submit(13)
            except ValueError as exc:
                failure = exc
            return list(good), failure
        finally:
            await batcher.close()

    good, failure = asyncio.run(main())
    assert good == [i * 10 for i in range(40) if i != 13]
    assert str(failure) == "bad 13"
    assert max(len(c) for c in calls) > 1, "concurrent submissions were never batched"
    assert all(len(c) <= 8 for c in calls)


def test_micro_batcher_fails_a_batch_whose_handler_miscounts() -> None:
    async def main() -> None:
        batcher: MicroBatcher[int, int] = MicroBatcher(lambda items: [1], max_batch=4, wait_ms=0)
        try:
            results = await asyncio.gather(
                *(batcher.submit(i) for i in range(4)), return_exceptions=True
            )
            assert any(isinstance(r, RuntimeError) for r in results)
            assert all(r == 1 or isinstance(r, RuntimeError) for r in results)
        finally:
            await batcher.close()

    asyncio.run(main())


def test_concurrent_questions_get_their_own_answers_in_one_model_call(
    slow_service: QAService,
) -> None:
    embedder = slow_service.embedder
    assert isinstance(embedder, SlowEmbedder)
    expected = {q: slow_service.ask(q, 3) for q in QUESTIONS}
    embedder.calls.clear()
    fast = FastAsk(slow_service, AnswerCache(0), max_batch=32, wait_ms=20)

    async def main() -> list[object]:
        try:
            asked = [QUESTIONS[i % len(QUESTIONS)] for i in range(24)]
            answers = await asyncio.gather(*(fast.ask(q, 3) for q in asked))
            return list(zip(asked, answers, strict=True))
        finally:
            await fast.close()

    pairs = asyncio.run(main())
    for question, answer in pairs:  # type: ignore[misc]
        want = expected[question]
        assert answer.question == question
        assert [h.passage.passage_id for h in answer.hits] == [
            h.passage.passage_id for h in want.hits
        ]
    assert max(len(c) for c in embedder.calls) > 1
    assert len(embedder.calls) < 24
    assert max(fast.batcher.batch_sizes) > 1


def test_real_model_batched_vectors_match_one_by_one(essay_service: QAService) -> None:
    fast = FastAsk(essay_service, AnswerCache(0), max_batch=16, wait_ms=10)

    async def main() -> list[object]:
        try:
            return list(await asyncio.gather(*(fast.ask(q) for q in QUESTIONS)))
        finally:
            await fast.close()

    batched = asyncio.run(main())
    for question, answer in zip(QUESTIONS, batched, strict=True):
        single = essay_service.ask(question)
        assert answer.answered == single.answered  # type: ignore[attr-defined]
        assert [h.passage.passage_id for h in answer.hits] == [  # type: ignore[attr-defined]
            h.passage.passage_id for h in single.hits
        ]


def test_invalid_questions_fail_before_queueing(slow_service: QAService) -> None:
    fast = FastAsk(slow_service)

    async def main() -> None:
        try:
            with pytest.raises(InvalidQuestionError):
                await fast.ask("   ")
            with pytest.raises(InvalidQuestionError):
                await fast.ask("fine", k=0)
        finally:
            await fast.close()

    asyncio.run(main())
    assert not fast.batcher.batch_sizes


def test_repeated_question_is_served_from_the_cache(slow_service: QAService) -> None:
    embedder = slow_service.embedder
    assert isinstance(embedder, SlowEmbedder)
    fast = FastAsk(slow_service, AnswerCache(8))

    async def main() -> tuple[object, object, object]:
        try:
            first = await fast.ask(QUESTIONS[0], 3)
            calls = len(embedder.calls)
            again = await fast.ask("  " + QUESTIONS[0].replace(" ", "   ") + " ", 3)
            assert len(embedder.calls) == calls, "a cached question reached the model"
            other_k = await fast.ask(QUESTIONS[0], 4)
            assert len(embedder.calls) == calls + 1
            return first, again, other_k
        finally:
            await fast.close()

    first, again, other_k = asyncio.run(main())
    assert again.hits == first.hits  # type: ignore[attr-defined]
    assert again.question.startswith("  ")  # type: ignore[attr-defined]
    assert again.took_ms < 2.0  # type: ignore[attr-defined]
    assert len(other_k.hits) == 4  # type: ignore[attr-defined]
    assert fast.cache.hits == 1


def test_cache_is_invalidated_when_the_snapshot_changes(slow_service: QAService) -> None:
    cache = AnswerCache(4)
    answer = slow_service.ask(QUESTIONS[0], 3)
    key = cache_key(QUESTIONS[0], 3, "dense", False)
    old = slow_service.snapshot
    cache.put(old, key, answer)
    assert cache.get(old, key) is not None
    new = load_snapshot(current_build(slow_service.settings.index_dir))  # e.g. after a rebuild
    assert cache.get(new, key) is None
    assert cache.invalidations == 1
    assert cache.get(old, key) is None  # entries from the old index are gone for good


def test_cache_is_bounded_lru() -> None:
    cache = AnswerCache(2)
    snap = object()
    answers = {}
    for q in ("a", "b", "c"):
        answers[q] = object()
        cache.put(snap, cache_key(q, 5, "hybrid", False), answers[q])  # type: ignore[arg-type]
    assert len(cache) == 2
    assert cache.get(snap, cache_key("a", 5, "hybrid", False)) is None  # type: ignore[arg-type]


def test_index_choice_by_size() -> None:
    assert choose_index_spec(1_000) == "Flat"
    assert choose_index_spec(FLAT_MAX) == "Flat"
    assert choose_index_spec(FLAT_MAX + 1) == HNSW_SPEC
    assert choose_index_spec(HNSW_MAX) == HNSW_SPEC
    # The measured million-row choice; nlist ~ 4 sqrt(N) as a power of two, nprobe nlist/16.
    assert choose_index_spec(1_000_000) == "IVF4096,SQ8,RFlat|nprobe=256,k_factor_rf=4"
    assert choose_index_spec(HNSW_MAX + 1) == "IVF2048,SQ8,RFlat|nprobe=128,k_factor_rf=4"
    assert choose_index_spec(4_000_000) == "IVF8192,SQ8,RFlat|nprobe=512,k_factor_rf=4"


def test_ivf_spec_trains_on_a_seeded_sample_and_keeps_its_knobs(tmp_path: Path) -> None:
    import faiss

    rng = np.random.default_rng(0)
    x = rng.standard_normal((3_000, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    spec = "IVF16,SQ8,RFlat|nprobe=4,k_factor_rf=3"
    index = faiss.index_factory(16, spec.split("|")[0], faiss.METRIC_INNER_PRODUCT)
    sample = _training_sample(index, x)
    assert len(sample) == 16 * TRAIN_PER_LIST  # 1,024 of 3,000 rows
    assert np.array_equal(sample, _training_sample(index, x))  # seeded: same index every build
    flat = faiss.index_factory(16, "Flat", faiss.METRIC_INNER_PRODUCT)
    assert _training_sample(flat, x) is x

    store = FaissVectorStore.build(x, spec)
    store.save(tmp_path)
    loaded = FaissVectorStore.load(tmp_path, spec)
    assert faiss.extract_index_ivf(loaded._index).nprobe == 4
    assert faiss.downcast_index(loaded._index).k_factor == 3
    _, ids = loaded.search(x[:5], 1)
    assert ids[:, 0].tolist() == [0, 1, 2, 3, 4]  # the exact re-rank finds each row itself


def test_index_choice_is_recorded_in_the_manifest(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(project)
    build_index(settings, FakeEmbedder())
    manifest = read_manifest(current_build(settings.index_dir))
    assert manifest.vector_store == "faiss:Flat"

    monkeypatch.setattr("qa.store.vectors.FLAT_MAX", 0)  # pretend the essay is a huge corpus
    build_index(settings, FakeEmbedder())
    folder = current_build(settings.index_dir)
    assert read_manifest(folder).vector_store == f"faiss:{HNSW_SPEC}"
    snapshot = load_snapshot(folder)
    assert snapshot.vectors.spec == HNSW_SPEC
    service = QAService(settings, FakeEmbedder(), snapshot)
    assert service.ask("Is the relationship an alliance?", 3, "dense").hits


def test_hnsw_spec_parameters_are_applied() -> None:
    import faiss

    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    store = FaissVectorStore.build(x, "HNSW8|efConstruction=20,efSearch=33")
    hnsw = faiss.downcast_index(store._index).hnsw
    assert (hnsw.efConstruction, hnsw.efSearch) == (20, 33)
    _, ids = store.search(x[:5], 1)
    assert ids[:, 0].tolist() == [0, 1, 2, 3, 4]


def test_the_model_runs_on_one_thread_whoever_asks(
    embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """torch's OpenMP threads form one team per thread that runs torch; keep it to one."""
    from concurrent.futures import ThreadPoolExecutor

    from qa.embedding import SentenceTransformerEmbedder

    assert isinstance(embedder, SentenceTransformerEmbedder)
    model = embedder._model
    ran_on: list[int] = []
    real_encode = model.encode

    def recording_encode(*args: Any, **kwargs: Any) -> Any:
        ran_on.append(threading.get_ident())
        return real_encode(*args, **kwargs)

    monkeypatch.setattr(model, "encode", recording_encode)
    question = ["Is the relationship an alliance?"]
    here = embedder.encode(question)
    with ThreadPoolExecutor(1) as other:
        there = other.submit(embedder.encode, question).result()
    assert len(ran_on) == 2
    assert ran_on[0] == ran_on[1] != threading.get_ident()
    np.testing.assert_array_equal(here, there)
