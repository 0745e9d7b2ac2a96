"""`qa ask` and `qa index`: output, the JSON schema, and every error path."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qa.cli.app import app
from qa.embedding import Embedder
from qa.service import QAService
from tests.helpers import ESSAY, project_env, qa_command

ESSAY_ID = "china-russia-relations-in-the-age-of-trump"


def run_qa(project: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*qa_command(), *args],
        capture_output=True,
        text=True,
        env=project_env(project, **extra),
        cwd=project,
        timeout=300,
    )


def _runner(monkeypatch: pytest.MonkeyPatch, project: Path, model: Embedder) -> CliRunner:
    """In-process CLI on an essay index the session built, with the model it was built with."""
    for key in list(os.environ):
        if key.startswith("QA_"):
            monkeypatch.delenv(key)
    for key, value in project_env(project).items():
        if key.startswith("QA_"):
            monkeypatch.setenv(key, value)
    monkeypatch.setattr("qa.service.load_embedder", lambda settings: model)
    return CliRunner()


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, fake_essay_service: QAService) -> CliRunner:
    """The output format and schema do not depend on the model: the fake one serves."""
    service = fake_essay_service
    return _runner(monkeypatch, service.settings.seeds_dir.parent, service.embedder)


@pytest.fixture
def real_cli(monkeypatch: pytest.MonkeyPatch, essay_service: QAService) -> CliRunner:
    """Abstention is about the real model's scores."""
    return _runner(monkeypatch, essay_service.settings.seeds_dir.parent, essay_service.embedder)


def test_ask_json_has_exactly_the_documented_schema(
    cli: CliRunner, fake_essay_service: QAService
) -> None:
    result = cli.invoke(
        app, ["ask", "Is the Sino-Russian relationship an alliance?", "--json", "-k", "3"]
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"question", "answered", "passages", "took_ms"}
    assert data["question"] == "Is the Sino-Russian relationship an alliance?"
    assert data["answered"] is True and len(data["passages"]) == 3
    text = ESSAY.read_text(encoding="utf-8")
    for rank, passage in enumerate(data["passages"], 1):
        assert set(passage) == {"rank", "score", "id", "text", "citation", "quote", "explain"}
        assert passage["rank"] == rank
        citation = passage["citation"]
        assert set(citation) == {
            "doc_id", "title", "section", "paragraphs", "start", "end", "lines", "label"
        }  # fmt: skip
        assert citation["doc_id"] == ESSAY_ID
        assert text[citation["start"] : citation["end"]] == passage["text"]
        quote = passage["quote"]
        assert citation["start"] <= quote["start"] < quote["end"] <= citation["end"]
        assert text[quote["start"] : quote["end"]] == quote["text"]
        assert citation["label"].startswith("Convergence and divergence: China-Russia… — ")
        assert set(passage["explain"]) == {
            "dense_score", "dense_rank", "bm25_score", "bm25_rank", "fused_score"
        }  # fmt: skip
    expected = fake_essay_service.ask("Is the Sino-Russian relationship an alliance?", 3)
    assert [p["id"] for p in data["passages"]] == [h.passage.passage_id for h in expected.hits]


def test_ask_prints_numbered_passages_with_citations(cli: CliRunner) -> None:
    result = cli.invoke(
        app, ["ask", "Which consumer goods has China flooded the Russian market with?", "-k", "2"]
    )
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("1. score ")
    assert "Convergence and divergence: China-Russia… — The primacy of interests ¶" in lines[0]
    assert "(lines " in lines[0] and ", chars " in lines[0]
    assert "cars, laptops and phones" in result.stdout
    assert any(line.startswith("2. score ") for line in lines)


def test_unanswerable_question_abstains(real_cli: CliRunner) -> None:
    question = "What is the boiling point of water at sea level?"
    result = real_cli.invoke(app, ["ask", question])
    assert result.exit_code == 0
    assert "No passage in the collection answers this question." in result.stderr
    assert result.stdout == ""  # no passages on stdout
    shown = real_cli.invoke(app, ["ask", question, "--json"])
    assert json.loads(shown.stdout)["answered"] is False
    assert json.loads(shown.stdout)["passages"] == []
    everything = real_cli.invoke(app, ["ask", question, "--json", "--all", "-k", "2"])
    data = json.loads(everything.stdout)
    assert data["answered"] is False and len(data["passages"]) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ask", ""], "error: question must not be empty"),
        (["ask", "   \t "], "error: question must not be empty"),
        (["ask", "hi", "-k", "0"], "error: k must be between 1 and 50, got 0"),
        (["ask", "hi", "-k", "51"], "error: k must be between 1 and 50, got 51"),
        (
            ["ask", "hi", "--retriever", "magic"],
            "error: invalid setting retriever (QA_RETRIEVER): "
            "Input should be 'dense', 'bm25' or 'hybrid', got magic",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = run_qa(tmp_path, *args)
    assert result.returncode == 2
    assert result.stderr.strip() == message
    assert "Traceback" not in result.stderr


def test_missing_and_empty_seeds_fail_cleanly(tmp_path: Path) -> None:
    missing = run_qa(tmp_path, "ask", "anything")
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"error: seeds folder {tmp_path / 'seeds'} does not exist"
    (tmp_path / "seeds").mkdir()
    empty = run_qa(tmp_path, "ask", "anything")
    assert empty.returncode == 2
    assert (
        empty.stderr.strip()
        == f"error: seeds folder {tmp_path / 'seeds'} has no .txt or .md documents"
    )
    index = run_qa(tmp_path, "index")
    assert index.returncode == 2 and "has no .txt or .md documents" in index.stderr


@pytest.mark.model  # `qa index` in a subprocess loads the model before reading seeds
def test_invalid_document_is_named_and_nothing_is_built(project: Path) -> None:
    (project / "seeds" / "broken.txt").write_bytes(b"Title\n\n\xff\n")
    result = run_qa(project, "index")
    assert result.returncode == 2
    assert result.stderr.strip().endswith("broken.txt is not valid UTF-8 (byte 7)")
    assert not (project / "index" / "current").exists()


SMALL_DOC = """Garden notes

Tomatoes

Tomatoes need six hours of sun a day. Water them at the roots in the morning.

Roses

Prune roses in late winter, just before the buds swell.
"""


@pytest.mark.model  # `qa index` and `qa ask` in subprocesses
def test_index_then_ask_end_to_end_and_no_rebuild(tmp_path: Path) -> None:
    (tmp_path / "seeds").mkdir()
    seed = tmp_path / "seeds" / "garden.txt"
    seed.write_text(SMALL_DOC, encoding="utf-8")
    built = run_qa(tmp_path, "index")
    assert built.returncode == 0, built.stderr
    assert built.stdout.startswith("indexed 1 documents")
    again = run_qa(tmp_path, "index")
    assert again.returncode == 0 and again.stdout.startswith("index is current")
    seed.write_text(
        SMALL_DOC + "\nCompost\n\nTurn the compost heap every two weeks.\n", encoding="utf-8"
    )
    refused = run_qa(tmp_path, "ask", "When should roses be pruned?", "--no-rebuild")
    assert refused.returncode == 2
    assert (
        refused.stderr.strip()
        == "error: index is stale: changed documents: garden (run `qa index`)"
    )
    rebuilt = run_qa(
        tmp_path, "ask", "How often should the compost be turned?", "--json", "-k", "1"
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert rebuilt.stderr.strip().splitlines()[-1] == "rebuilding index: changed documents: garden"
    (passage,) = json.loads(rebuilt.stdout)["passages"]
    assert passage["text"] == "Turn the compost heap every two weeks."
    assert passage["citation"]["section"] == "Compost"
    assert passage["citation"]["label"] == "Garden notes — Compost ¶1"
    assert passage["citation"]["lines"] == [13, 13]


def test_ask_scoped_to_documents(cli: CliRunner, essay_service: object) -> None:
    question = "Is the Sino-Russian relationship an alliance?"
    whole = cli.invoke(app, ["ask", question, "--json", "-k", "2"])
    scoped = cli.invoke(app, ["ask", question, "--json", "-k", "2", "--document", ESSAY_ID])
    assert scoped.exit_code == 0, scoped.stderr
    # The whole collection as the scope: the same passages (cosines agree to float32 rounding).
    a, b = (json.loads(r.stdout)["passages"] for r in (whole, scoped))
    assert [(p["id"], p["citation"], p["quote"]) for p in a] == [
        (p["id"], p["citation"], p["quote"]) for p in b
    ]
    assert [p["score"] for p in a] == pytest.approx([p["score"] for p in b], abs=1e-5)
    unknown = cli.invoke(app, ["ask", question, "-d", ESSAY_ID, "-d", "nope", "-d", "zap"])
    assert unknown.exit_code == 2
    assert unknown.stderr.strip() == "error: unknown document ids 'nope', 'zap'"
