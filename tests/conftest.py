"""Shared fixtures: one real model per session, the essay index, fake embedder, temp seeds."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from qa.config import Settings
from qa.embedding import Embedder, SentenceTransformerEmbedder
from qa.service import QAService
from tests.fakes import FakeEmbedder

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
ESSAY = SEEDS / "china-russia-relations-in-the-age-of-trump.txt"
QUESTIONS = ROOT / "eval" / "questions.jsonl"

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def make_settings(root: Path, **overrides: object) -> Settings:
    """Settings rooted in a temporary project folder, ignoring the caller's QA_* env."""
    values: dict[str, object] = {
        "seeds_dir": root / "seeds",
        "index_dir": root / "index",
        "cache_dir": root / ".cache",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real model, loaded once for the whole test session."""
    return SentenceTransformerEmbedder()


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A temporary project folder holding a copy of the essay in seeds/."""
    (tmp_path / "seeds").mkdir()
    shutil.copy(ESSAY, tmp_path / "seeds" / ESSAY.name)
    return tmp_path


@pytest.fixture(scope="session")
def essay_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("essay")
    (root / "seeds").mkdir()
    shutil.copy(ESSAY, root / "seeds" / ESSAY.name)
    return root


@pytest.fixture(scope="session")
def essay_settings(essay_project: Path) -> Settings:
    return make_settings(essay_project)


@pytest.fixture(scope="session")
def essay_service(essay_settings: Settings, embedder: Embedder) -> QAService:
    """The essay indexed with the real model and default settings (built once)."""
    return QAService.open(essay_settings, embedder, rebuild=True)


@pytest.fixture(scope="session")
def labelled_questions() -> list[dict[str, object]]:
    with QUESTIONS.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Drop QA_* variables so a test sees only the defaults it sets."""
    for key in list(os.environ):
        if key.startswith("QA_"):
            monkeypatch.delenv(key)
    yield


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Load tests are opt-in: they run only when ``-m`` names them (``pytest -m load``)."""
    if "load" in (config.getoption("markexpr", "") or ""):
        return
    skip = pytest.mark.skip(reason="opt-in load test: run it with `pytest -m load`")
    for item in items:
        if item.get_closest_marker("load") is not None:
            item.add_marker(skip)


@contextmanager
def live_server(app: Any) -> Iterator[tuple[str, int]]:
    """uvicorn in a thread on a free loopback port: requests really go over HTTP."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", port
    finally:
        server.should_exit = True
        thread.join(timeout=15)
