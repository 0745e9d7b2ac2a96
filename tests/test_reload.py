"""``POST /admin/reload``: off by default, bearer-protected, an atomic swap under load."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from qa.api import create_app
from qa.batching import FastAsk
from qa.config import Settings
from qa.embedding import Embedder, Vectors
from qa.service import QAService
from tests.helpers import FakeEmbedder, assert_error, live_server, make_settings

TOKEN = "test-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NEW_LINE = "Zanzibarite quarries supplied the harbour walls of the old trading port."
QUESTIONS = [
    "Is the Sino-Russian relationship an alliance?",
    "What does Russia sell to China?",
    "How does Trump see Russia?",
    "Zanzibarite quarries and harbour walls",
]


class SlowFakeEmbedder(FakeEmbedder):
    """Slow enough that requests are still in flight while the index is swapped."""

    def encode(self, texts: list[str], batch_size: int = 32) -> Vectors:
        time.sleep(0.01)
        return super().encode(texts, batch_size)


def factory(settings: Settings, model: Embedder | None = None) -> QAService:
    """What ``open_service`` does, with the fake model: the given one, or a new one."""
    return QAService.open(settings, model or SlowFakeEmbedder())


@pytest.fixture
def admin_settings(project: Path) -> Settings:
    return make_settings(project, admin_token=TOKEN, request_timeout_s=2.0)


@pytest.fixture
def live(admin_settings: Settings) -> Iterator[tuple[str, FastAPI]]:
    """uvicorn in a thread, so requests really overlap the reload; the app loads (and so
    owns) its service."""
    app = create_app(admin_settings, service_factory=factory)
    with live_server(app) as (base, _):
        deadline = time.monotonic() + 30
        while httpx.get(f"{base}/readyz").status_code != 200:
            assert time.monotonic() < deadline, "the service did not load"
            time.sleep(0.05)
        yield base, app


def test_reload_is_off_without_a_token(project: Path) -> None:
    settings = make_settings(project)
    service = QAService.open(settings, FakeEmbedder(), rebuild=True)
    with TestClient(create_app(settings, service=service)) as client:
        for headers in ({}, AUTH):
            assert_error(client.post("/admin/reload", headers=headers), 404, "not_found")


def test_reload_requires_the_bearer_token(admin_settings: Settings) -> None:
    service = factory(admin_settings.with_overrides(auto_rebuild=True))
    with TestClient(create_app(admin_settings, service=service)) as client:
        missing = client.post("/admin/reload")
        assert_error(missing, 401, "unauthorized")
        assert missing.headers["www-authenticate"] == "Bearer"
        for bad in (f"Bearer {TOKEN}x", "Bearer ", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN[:-1]}"):
            response = client.post("/admin/reload", headers={"Authorization": bad})
            assert response.status_code in (401, 403), bad
            assert TOKEN not in response.text
        assert_error(
            client.post("/admin/reload", headers={"Authorization": "Bearer nope"}), 403, "forbidden"
        )
        current = client.post("/admin/reload", headers=AUTH)
        assert current.status_code == 200
        assert current.json()["reloaded"] is False and current.json()["reasons"] == []
        assert client.app.state.qa.service is service  # type: ignore[attr-defined]


def _hammer(base: str, stop: threading.Event, out: list[tuple[int, dict[str, Any]]]) -> None:
    with httpx.Client(base_url=base, timeout=30) as client:
        turn = 0
        while not stop.is_set():
            question = QUESTIONS[turn % len(QUESTIONS)]
            turn += 1
            try:
                response = client.post("/ask", json={"question": question, "k": 3})
            except httpx.TransportError as exc:  # a dropped request
                out.append((-1, {"error": repr(exc)}))
                continue
            out.append((response.status_code, response.json()))


def _consistent(body: dict[str, Any], *services: QAService) -> bool:
    """Every passage is exactly a passage of one of the indexes, never a mix."""
    for passage in body["passages"]:
        owners = [s for s in services if passage["id"] in s.snapshot.by_id]
        if not any(s.passage(passage["id"]).text == passage["text"] for s in owners):
            return False
    return True


@pytest.mark.slow
def test_changed_seed_is_stale_then_reloaded_atomically_under_load(
    live: tuple[str, FastAPI], project: Path
) -> None:
    base, app = live
    state = app.state.qa
    old: QAService = state.service
    seed = next((project / "seeds").iterdir())
    with httpx.Client(base_url=base, timeout=60) as client:
        assert client.get("/readyz").json()["stale"] is False
        seed.write_text(seed.read_text(encoding="utf-8") + f"\n{NEW_LINE}\n", encoding="utf-8")
        time.sleep(1.1)  # past the readiness cache
        stale = client.get("/readyz").json()
        assert stale["ready"] is True and stale["stale"] is True
        assert any("changed" in reason for reason in stale["reasons"]), stale["reasons"]
        before = client.post("/ask", json={"question": QUESTIONS[3], "k": 3}).json()
        assert all("Zanzibarite" not in p["text"] for p in before["passages"])

        stop = threading.Event()
        results: list[tuple[int, dict[str, Any]]] = []
        workers = [threading.Thread(target=_hammer, args=(base, stop, results)) for _ in range(6)]
        for worker in workers:
            worker.start()
        try:
            time.sleep(0.5)
            during = len(results)
            reload = client.post("/admin/reload", headers=AUTH)
            time.sleep(0.5)
        finally:
            stop.set()
            for worker in workers:
                worker.join(timeout=30)

        assert reload.status_code == 200, reload.text
        body = reload.json()
        assert body["reloaded"] is True and body["reasons"] and body["passages"] > 0
        new: QAService = state.service
        assert new is not old
        assert len(results) > during > 0  # requests kept flowing through the reload
        statuses = {status for status, _ in results}
        assert statuses == {200}, [r for r in results if r[0] != 200][:3]
        assert all(_consistent(answer, old, new) for _, answer in results)

        fresh = client.get("/readyz").json()
        assert fresh["stale"] is False and fresh["index_built_at"] == body["index_built_at"]
        after = client.post("/ask", json={"question": QUESTIONS[3], "k": 3}).json()
        assert any("Zanzibarite" in p["text"] for p in after["passages"])
        assert _consistent(after, new) and not _consistent(after, old)
        doc = client.get(f"/documents/{new.documents()[0].doc_id}").json()
        assert doc["length"] == new.documents()[0].length != old.documents()[0].length

        assert new.embedder is old.embedder  # the loaded model is reused, not loaded again
        # The old service's batcher and store are released once the timeout has passed.
        deadline = time.monotonic() + 10
        while not old.closed:
            assert time.monotonic() < deadline, "the replaced service was never closed"
            time.sleep(0.1)
        assert not new.closed


# -- what the app owns ------------------------------------------------------------------


def record_stopped_batchers(monkeypatch: pytest.MonkeyPatch) -> list[FastAsk]:
    """Every batcher stopped from now on, in order (``FastAsk.close`` still runs)."""
    stopped: list[FastAsk] = []
    real_close = FastAsk.close

    async def close(self: FastAsk) -> None:
        stopped.append(self)
        await real_close(self)

    monkeypatch.setattr(FastAsk, "close", close)
    return stopped


def wait_ready(client: TestClient) -> None:
    deadline = time.monotonic() + 30
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, client.get("/readyz").text
        time.sleep(0.02)


def test_reload_reuses_the_model_and_releases_the_replaced_service(
    admin_settings: Settings, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models: list[Embedder | None] = []

    def counting(settings: Settings, model: Embedder | None) -> QAService:
        models.append(model)
        return factory(settings, model)

    stopped = record_stopped_batchers(monkeypatch)
    app = create_app(admin_settings, service_factory=counting)
    state = app.state.qa
    with TestClient(app) as client:
        wait_ready(client)
        old: QAService = state.service
        assert client.post("/ask", json={"question": QUESTIONS[0], "k": 1}).status_code == 200
        old_fast = state.fast_ask()
        assert old_fast.service is old  # the batcher lives on the app state, for this service
        seed = next((project / "seeds").iterdir())
        seed.write_text(seed.read_text(encoding="utf-8") + f"\n{NEW_LINE}\n", encoding="utf-8")
        reload = client.post("/admin/reload", headers=AUTH)
        assert reload.status_code == 200 and reload.json()["reloaded"] is True
        new: QAService = state.service
        assert new is not old and new.embedder is old.embedder
        assert models == [None, old.embedder]  # one model loaded, then handed on
        assert state.fast_ask() is not old_fast and state.fast_ask().service is new
        assert not old.closed  # requests may still hold it until the grace period ends
        assert stopped == []
    # Shutdown stops every batcher at once and releases both services the app loaded.
    assert old.closed and new.closed
    assert old_fast in stopped and len(stopped) == 2


def test_a_given_service_stays_its_callers_but_its_batcher_is_stopped(
    admin_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = factory(admin_settings)
    stopped = record_stopped_batchers(monkeypatch)
    app = create_app(admin_settings, service=service)
    for _ in range(2):  # a second client on the same app gets a fresh batcher
        with TestClient(app) as client:
            assert client.post("/ask", json={"question": QUESTIONS[0]}).status_code == 200
            fast = app.state.qa.fast_ask()
        assert stopped[-1] is fast and fast.service is service
    assert len(stopped) == 2 and stopped[0] is not stopped[1]
    assert not service.closed


def test_close_releases_the_vector_store_once(admin_settings: Settings) -> None:
    service = factory(admin_settings)
    closed: list[int] = []

    class Store:
        """The FAISS store, counting ``close`` as a Milvus client would be closed."""

        def __init__(self, real: object) -> None:
            self.real = real

        def close(self) -> None:
            closed.append(1)

    service.snapshot.vectors = Store(service.snapshot.vectors)  # type: ignore[assignment]
    service.close()
    service.close()
    assert service.closed and closed == [1]
