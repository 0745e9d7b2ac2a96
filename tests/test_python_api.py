"""The Python API: `from qa import Collection`, the README's five lines, and nothing printed."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import qa
from qa import Collection, QAService
from qa.embedding import Embedder
from qa.errors import InvalidQuestionError
from qa.schemas import AskResponse

QUESTION = "Is the Sino-Russian relationship an alliance?"
ESSAY_ID = "china-russia-relations-in-the-age-of-trump"


def test_readme_example_answers_like_the_service_and_prints_nothing(
    essay_project: Path,
    essay_service: QAService,
    embedder: Embedder,
    capfd: pytest.CaptureFixture[str],
    clean_env: None,
) -> None:
    threads = {t.name for t in threading.enumerate()}
    collection = Collection.open(essay_project, embedder=embedder)
    answer = collection.ask(QUESTION, k=3)
    assert isinstance(answer, AskResponse)
    expected = AskResponse.of(essay_service.ask(QUESTION, k=3))
    assert answer.model_dump(exclude={"took_ms"}) == expected.model_dump(exclude={"took_ms"})
    scoped = collection.ask(QUESTION, k=2, documents=[ESSAY_ID])
    assert [p.id for p in scoped.passages] == [p.id for p in expected.passages[:2]]
    assert [d.doc_id for d in collection.documents()] == [ESSAY_ID]
    assert collection.service.settings.index_dir == essay_project.resolve() / "index"
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    started = {t.name for t in threading.enumerate()} - threads
    assert not any("uvicorn" in name or "batch" in name for name in started), started


def test_bad_input_raises_the_services_error(
    essay_project: Path, embedder: Embedder, clean_env: None
) -> None:
    collection = Collection.open(essay_project, embedder=embedder, rebuild=False)
    with pytest.raises(InvalidQuestionError, match=r"^unknown document id 'nope'$"):
        collection.ask(QUESTION, documents=["nope"])
    with pytest.raises(InvalidQuestionError, match=r"^k must be between 1 and 50, got 0$"):
        collection.ask(QUESTION, k=0)


def test_the_package_exports_are_lazy() -> None:
    assert qa.QAService is QAService and qa.Collection is Collection
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = qa.nothing  # type: ignore[attr-defined]
