"""Scoped questions: the answer comes only from the listed documents, on both vector stores."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

import qa.store.vectors
from qa.api import create_app
from qa.batching import FastAsk
from qa.errors import InvalidQuestionError
from qa.service import QAService
from qa.store.vectors import FaissVectorStore
from qa.types import DocumentScope
from tests.helpers import FakeEmbedder, make_settings

TOPICS = {
    "alpha": "Alpine glaciers retreat quickly in warm summers. Meltwater feeds rivers.",
    "bravo": "Bread rises because yeast produces carbon dioxide. Ovens bake the loaf.",
    "charlie": "Chess openings control the centre early. Knights move in an L shape.",
    "delta": "River deltas form where sediment settles at the coast. Rivers slow there.",
}
GLACIERS = "Why do glaciers retreat and feed rivers with meltwater?"


def topic_project(root: Path) -> Path:
    (root / "seeds").mkdir(parents=True)
    for name, body in TOPICS.items():
        (root / "seeds" / f"{name}.txt").write_text(f"Topic {name}\n\n{body}\n", encoding="utf-8")
    return root


class RecordingClient:
    """A Milvus client that remembers the arguments of every search."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.searches: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def search(self, collection: str, **kwargs: Any) -> Any:
        self.searches.append(kwargs)
        return self.real.search(collection, **kwargs)


@pytest.fixture(scope="module", params=["faiss", "milvus"])
def service(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> QAService:
    root = topic_project(tmp_path_factory.mktemp(f"scope-{request.param}"))
    store = "faiss" if request.param == "faiss" else f"milvus://{root / 'milvus.db'}"
    settings = make_settings(root, vector_store=store)
    return QAService.open(settings, FakeEmbedder(), rebuild=True)


@pytest.mark.parametrize("retriever", ["dense", "bm25", "hybrid"])
def test_answers_come_only_from_the_scope(service: QAService, retriever: str) -> None:
    whole = service.ask(GLACIERS, k=4, retriever=retriever, include_low_confidence=True)
    assert "alpha" in {h.passage.doc_id for h in whole.hits}
    assert "delta" in {h.passage.doc_id for h in whole.hits}  # "rivers" matches it too
    for scope in (["delta"], ["bravo", "delta"], ["delta", "delta"]):
        answer = service.ask(
            GLACIERS, k=4, retriever=retriever, include_low_confidence=True, documents=scope
        )
        found = {h.passage.doc_id for h in answer.hits}
        assert found and found <= set(scope), (scope, found)
        assert [h.rank for h in answer.hits] == list(range(1, len(answer.hits) + 1))


def test_abstention_looks_at_the_scope_only(service: QAService) -> None:
    assert service.ask(GLACIERS).answered is True
    scoped = service.ask(GLACIERS, documents=["bravo"])
    assert scoped.answered is False and scoped.hits == ()
    assert scoped.confidence < service.settings.abstain_threshold
    shown = service.ask(GLACIERS, documents=["bravo"], include_low_confidence=True)
    assert {h.passage.doc_id for h in shown.hits} == {"bravo"}


@pytest.mark.parametrize(
    ("documents", "message"),
    [
        (["nope"], "unknown document id 'nope'"),
        (["alpha", "nope", "zap", "nope"], "unknown document ids 'nope', 'zap'"),
        ([], "documents must list at least one document id"),
    ],
)
def test_unknown_or_empty_scope_is_refused(
    service: QAService, documents: list[str], message: str
) -> None:
    with pytest.raises(InvalidQuestionError) as caught:
        service.ask(GLACIERS, documents=documents)
    assert str(caught.value) == message


def test_scope_rows_are_exactly_the_documents_passages(service: QAService) -> None:
    scope = service.scope(["delta", "alpha"])
    assert scope is not None and scope.doc_ids == ("alpha", "delta")
    passages = service.snapshot.passages
    expected = [i for i, p in enumerate(passages) if p.doc_id in {"alpha", "delta"}]
    assert scope.rows.tolist() == expected
    assert service.scope(None) is None
    lone = service.scope("delta")  # a bare id from Python is one id, not five letters
    assert lone is not None and lone.doc_ids == ("delta",)


def test_the_vector_store_gets_the_scope(
    service: QAService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FAISS gets the scope's rows; Milvus turns it into a server-side filter expression."""
    store = service.snapshot.vectors
    scopes: list[DocumentScope | None] = []
    real_search = store.search

    def search(queries: Any, k: int, scope: DocumentScope | None = None) -> Any:
        scopes.append(scope)
        return real_search(queries, k, scope)

    monkeypatch.setattr(store, "search", search)
    client = getattr(store, "_client", None)
    recorder = RecordingClient(client) if client is not None else None
    if recorder is not None:
        monkeypatch.setattr(store, "_client", recorder)
    service.ask(GLACIERS, documents=["delta", "bravo"], retriever="dense")
    service.ask(GLACIERS, retriever="dense")
    first, second = scopes
    assert first is not None and first.doc_ids == ("bravo", "delta") and second is None
    assert first.rows.tolist() == service.scope(["bravo", "delta"]).rows.tolist()  # type: ignore[union-attr]
    if recorder is not None:
        filters = [search["filter"] for search in recorder.searches]
        assert filters == ['doc_id in ["bravo", "delta"]', ""]
    else:
        assert service.snapshot.manifest.vector_store == "faiss:Flat"


def test_the_answer_cache_keeps_scopes_apart(service: QAService) -> None:
    fast = FastAsk(service)

    async def run() -> list[set[str]]:
        try:
            out = []
            for documents in (None, ["delta"], None, ["delta"], ["bravo"]):
                answer = await fast.ask(GLACIERS, 3, "hybrid", True, documents)
                out.append({h.passage.doc_id for h in answer.hits})
            return out
        finally:
            await fast.close()

    whole, delta, whole_again, delta_again, bravo = asyncio.run(run())
    assert "alpha" in whole and whole_again == whole
    assert delta == delta_again == {"delta"}
    assert bravo == {"bravo"}
    assert fast.cache.hits == 2 and fast.cache.misses == 3


def test_http_ask_takes_documents_in_body_and_query(service: QAService) -> None:
    with TestClient(create_app(service.settings, service=service)) as client:
        body = client.post(
            "/ask",
            json={"question": GLACIERS, "documents": ["delta"], "include_low_confidence": True},
        )
        assert body.status_code == 200, body.text
        assert {p["citation"]["doc_id"] for p in body.json()["passages"]} == {"delta"}
        query = client.get(
            "/ask",
            params=[
                ("q", GLACIERS),
                ("documents", "delta"),
                ("documents", "bravo"),
                ("include_low_confidence", "true"),
            ],
        )
        assert query.status_code == 200
        assert {p["citation"]["doc_id"] for p in query.json()["passages"]} <= {"delta", "bravo"}
        assert query.json()["passages"][0]["citation"]["doc_id"] == "delta"
        for response in (
            client.post("/ask", json={"question": GLACIERS, "documents": ["alpha", "nope"]}),
            client.get("/ask", params=[("q", GLACIERS), ("documents", "nope")]),
        ):
            assert response.status_code == 422
            assert response.json() == {
                "error": {
                    "code": "invalid_request",
                    "message": "documents: unknown document id 'nope'",
                }
            }
        empty = client.post("/ask", json={"question": GLACIERS, "documents": []})
        assert empty.status_code == 422
        assert empty.json()["error"]["message"].startswith("documents: list should have at least 1")
        wrong = client.post("/ask", json={"question": GLACIERS, "documents": "delta"})
        assert wrong.status_code == 422
        assert wrong.json()["error"]["message"] == "documents: input should be a valid list"


def random_unit(rows: int, dim: int, seed: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    vectors = np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.mark.parametrize("spec", ["Flat", "HNSW32|efSearch=16"])
@pytest.mark.parametrize("exact_max", [qa.store.vectors.SCOPE_EXACT_MAX, 0])
def test_faiss_scoped_search_is_exact_within_the_scope(
    spec: str, exact_max: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small scopes are scored exactly; large ones over-fetch and filter (forced by ``0``)."""
    monkeypatch.setattr(qa.store.vectors, "SCOPE_EXACT_MAX", exact_max)
    vectors = random_unit(2000, 16, 0)
    queries = random_unit(3, 16, 1)
    store = FaissVectorStore.build(vectors, spec)
    rows = np.arange(0, 2000, 3, dtype=np.int64)  # a third of the collection
    scores, ids = store.search(queries, 10, DocumentScope(("x",), rows))
    sims = queries @ vectors[rows].T
    truth = rows[np.argsort(-sims, axis=1)[:, :10]]
    assert ids.shape == (3, 10) and np.isin(ids, rows).all()
    if spec == "Flat" or exact_max:
        assert ids.tolist() == truth.tolist()
        assert np.allclose(scores, np.sort(sims, axis=1)[:, ::-1][:, :10], atol=1e-5)
    if exact_max:  # a scope smaller than k: every row of it, whatever the index
        tiny = DocumentScope(("x",), np.array([7, 1999], dtype=np.int64))
        scores, ids = store.search(queries, 10, tiny)
        assert ids.shape == (3, 2) and np.sort(ids, axis=1).tolist() == [[7, 1999]] * 3
