"""Readiness: 503 while the service loads or after it failed, staleness once it serves."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from qa.api import create_app
from qa.config import Settings
from qa.embedding import Embedder
from qa.errors import CorruptIndexError
from qa.service import QAService
from tests.helpers import FakeEmbedder, make_settings


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_503_with_retry_after_until_loaded_then_ready(project: Path) -> None:
    settings = make_settings(project)
    loaded = QAService.open(settings, FakeEmbedder(), rebuild=True)
    release = threading.Event()
    calls: list[tuple[Settings, Embedder | None]] = []

    def slow_factory(settings: Settings, model: Embedder | None) -> QAService:
        calls.append((settings, model))
        release.wait(10)
        return loaded

    app = create_app(settings, service_factory=slow_factory)
    with TestClient(app) as client:
        try:
            assert client.get("/healthz").status_code == 200  # the loop is free while loading
            ready = client.get("/readyz")
            assert ready.status_code == 503 and ready.headers["retry-after"]
            assert ready.json()["ready"] is False and ready.json()["status"] == "loading"
            for response in (
                client.post("/ask", json={"question": "Is it an alliance?"}),
                client.get("/ask", params={"q": "Is it an alliance?"}),
                client.get("/passages/abc"),
                client.get("/documents"),
                client.get("/documents/abc"),
            ):
                assert response.status_code == 503
                assert response.headers["retry-after"] == "5"
                assert response.json()["error"]["code"] == "not_ready"
                assert "loading" in response.json()["error"]["message"]
            assert "qa_ready 0.0" in client.get("/metrics").text
        finally:
            release.set()
        wait_for(lambda: client.get("/readyz").status_code == 200)
        assert calls == [(settings, None)]  # the first load has no model to reuse
        assert client.get("/readyz").json()["status"] == "ready"
        answer = client.post("/ask", json={"question": "Is it an alliance?", "k": 1})
        assert answer.status_code == 200 and len(answer.json()["passages"]) == 1


def test_failed_load_keeps_answering_503_with_the_reason(essay_settings: Settings) -> None:
    def broken_factory(settings: Settings, model: Embedder | None) -> QAService:
        raise CorruptIndexError("index/current/vectors.faiss is corrupt (checksum mismatch)")

    with TestClient(create_app(essay_settings, service_factory=broken_factory)) as client:
        wait_for(lambda: client.get("/readyz").json()["status"] == "failed")
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert "vectors.faiss is corrupt" in ready.json()["error"]
        response = client.post("/ask", json={"question": "anything"})
        assert response.status_code == 503 and response.json()["error"]["code"] == "not_ready"
        assert "could not be loaded" in response.json()["error"]["message"]
        assert client.get("/healthz").status_code == 200


def test_unexpected_load_error_is_not_leaked(essay_settings: Settings) -> None:
    def buggy_factory(settings: Settings, model: Embedder | None) -> QAService:
        raise RuntimeError("secret internals")

    with TestClient(create_app(essay_settings, service_factory=buggy_factory)) as client:
        wait_for(lambda: client.get("/readyz").json()["status"] == "failed")
        assert "secret" not in client.get("/readyz").text
        assert "secret" not in client.post("/ask", json={"question": "x"}).text


def test_readyz_reports_a_changed_seed_as_stale(project: Path, fake_embedder: FakeEmbedder) -> None:
    settings = make_settings(project)
    service = QAService.open(settings, fake_embedder, rebuild=True)
    with TestClient(create_app(settings, service=service)) as client:
        fresh = client.get("/readyz").json()
        assert fresh["stale"] is False and fresh["reasons"] == []
        seed = next((project / "seeds").iterdir())
        seed.write_text(seed.read_text(encoding="utf-8") + "\nA new closing line.\n", "utf-8")
        time.sleep(1.1)  # past the one-second cache
        stale = client.get("/readyz")
        assert stale.status_code == 200  # still serving the old index
        assert stale.json()["stale"] is True
        assert any("changed documents" in reason for reason in stale.json()["reasons"])
