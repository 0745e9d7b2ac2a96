"""Shared fixtures: one real model per session, the essay index, fake embedder, temp seeds."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from qa.config import Settings
from qa.embedding import Embedder, SentenceTransformerEmbedder
from qa.service import QAService
from tests.helpers import ESSAY, QUESTIONS, FakeEmbedder, make_settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")


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
def fake_essay_service(tmp_path_factory: pytest.TempPathFactory) -> QAService:
    """The essay indexed with the fake embedder: the real pipeline, no model to load."""
    root = tmp_path_factory.mktemp("fake-essay")
    (root / "seeds").mkdir()
    shutil.copy(ESSAY, root / "seeds" / ESSAY.name)
    return QAService.open(make_settings(root), FakeEmbedder(), rebuild=True)


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
