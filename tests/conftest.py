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
def fake_essay_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("fake-essay")
    (root / "seeds").mkdir()
    shutil.copy(ESSAY, root / "seeds" / ESSAY.name)
    return make_settings(root)


@pytest.fixture(scope="session")
def fake_essay_service(fake_essay_settings: Settings) -> QAService:
    """The essay indexed with the fake embedder: the real pipeline, no model to load."""
    return QAService.open(fake_essay_settings, FakeEmbedder(), rebuild=True)


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


# Fixtures that load the real model, directly or through ``embedder``.
MODEL_FIXTURES = {"embedder"}


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark ``model`` every test whose fixtures reach the real model, so none is forgotten;
    load tests are opt-in: they run only when ``-m`` names them (``pytest -m load``)."""
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.model)
    if "load" in (config.getoption("markexpr", "") or ""):
        return
    skip = pytest.mark.skip(reason="opt-in load test: run it with `pytest -m load`")
    for item in items:
        if item.get_closest_marker("load") is not None:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _no_model_outside_the_model_tier(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A test not marked ``model`` that loads the real model in-process fails, naming why."""
    if request.node.get_closest_marker("model") is not None:
        return

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(
            "this test loads the real model: use the fake embedder or mark it "
            "@pytest.mark.model (the session `embedder` fixture marks it by itself)"
        )

    monkeypatch.setattr(SentenceTransformerEmbedder, "__init__", refuse)
