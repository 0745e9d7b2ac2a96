"""`qa eval` end to end: labelled questions, reports, BEIR fixture and sweep.

Most runs use the fake embedder (swapped in for ``load_embedder``) so the command
is exercised quickly; BM25 is real, so its numbers are meaningful.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from qa.cli.app import app
from qa.config import Settings
from qa.embedding import Embedder
from tests.helpers import QUESTIONS, FakeEmbedder

BEIR_MINI = Path(__file__).parent / "data" / "beir-mini"


@pytest.fixture
def cli_project(project: Path, monkeypatch: pytest.MonkeyPatch, clean_env: None) -> Path:
    """The temp essay project as the CLI's environment, with the fake model."""
    monkeypatch.setenv("QA_SEEDS_DIR", str(project / "seeds"))
    monkeypatch.setenv("QA_INDEX_DIR", str(project / "index"))
    monkeypatch.setenv("QA_CACHE_DIR", str(project / ".cache"))
    monkeypatch.setattr("qa.service.load_embedder", lambda settings: FakeEmbedder())
    return project


def _questions(folder: Path, ids: set[str], extra: Sequence[dict[str, object]] = ()) -> Path:
    lines = [
        line
        for line in QUESTIONS.read_text(encoding="utf-8").splitlines()
        if line.strip() and json.loads(line)["id"] in ids
    ]
    lines += [json.dumps(e) for e in extra]
    path = folder / "questions.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["eval", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_eval_json_end_to_end(cli_project: Path) -> None:
    path = _questions(cli_project, {"d02", "d03", "du02"})
    code, out, err = _run(str(path), "--json", "-r", "bm25", "-r", "hybrid")
    assert code == 0, err
    data = json.loads(out)
    assert set(data["metrics"]) == {"bm25", "hybrid"}
    bm25 = data["metrics"]["bm25"]
    assert (bm25["answerable"], bm25["unanswerable"]) == (2, 1)
    assert bm25["hit@1"] == 1.0 and bm25["mrr"] == 1.0 and bm25["ndcg"] == 1.0
    assert set(bm25) >= {"hit@3", "hit@5", "hit@10", "quote_accuracy", "latency_p95_ms"}
    assert 0.0 <= bm25["abstention_rate"] <= 1.0
    assert data["config"]["chunk_tokens"] == Settings().chunk_tokens
    outcomes = {o["id"]: o for o in data["questions"]["bm25"]}
    assert outcomes["d02"]["first_rank"] == 1
    assert outcomes["du02"]["answerable"] is False and outcomes["du02"]["quote_ok"] is None
    assert (cli_project / "index" / "current").exists()  # the default path uses the saved index


def test_chunking_override_leaves_the_saved_index_alone(cli_project: Path) -> None:
    path = _questions(cli_project, {"d02", "d03"})
    code, out, err = _run(
        str(path), "--json", "-r", "bm25", "--chunk-tokens", "64", "--overlap", "0"
    )
    assert code == 0, err
    config = json.loads(out)["config"]
    assert (config["chunk_tokens"], config["overlap"]) == (64, 0)
    assert not (cli_project / "index").exists()


def test_a_chunking_variant_measures_what_qa_index_builds(
    cli_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``qa eval --chunk-tokens N --overlap M`` == ``QA_CHUNK_TOKENS=N QA_OVERLAP=M qa index``
    then ``qa eval``: the variant runs the same pipeline, into memory."""
    path = _questions(cli_project, {"d02", "d03", "d05", "d12", "d20", "du02"})
    code, out, err = _run(str(path), "--json", "--chunk-tokens", "96", "--overlap", "1")
    assert code == 0, err
    variant = json.loads(out)
    assert not (cli_project / "index").exists()

    monkeypatch.setenv("QA_CHUNK_TOKENS", "96")
    monkeypatch.setenv("QA_OVERLAP", "1")
    built = CliRunner().invoke(app, ["index"])
    assert built.exit_code == 0, built.stderr
    code, out, err = _run(str(path), "--json", "--no-rebuild")
    assert code == 0, err
    saved = json.loads(out)

    def measured(result: dict[str, Any]) -> dict[str, Any]:
        """Everything but wall-clock latency."""
        return {
            "config": result["config"],
            "metrics": {
                name: {k: v for k, v in m.items() if not k.startswith("latency")}
                for name, m in result["metrics"].items()
            },
            "questions": {
                name: [{k: v for k, v in o.items() if k != "took_ms"} for o in outcomes]
                for name, outcomes in result["questions"].items()
            },
        }

    assert (variant["config"]["chunk_tokens"], variant["config"]["overlap"]) == (96, 1)
    assert measured(variant) == measured(saved)


def test_missing_evidence_is_a_clear_error(cli_project: Path) -> None:
    bad: dict[str, object] = {
        "id": "zz9",
        "question": "Where?",
        "evidence": ["This sentence is in no document."],
    }
    path = _questions(cli_project, {"d02"}, [bad])
    code, _, err = _run(str(path))
    assert code == 2
    assert "zz9" in err and "not found in any document" in err


def test_bad_retriever_name(cli_project: Path) -> None:
    code, _, err = _run("-r", "sparse")
    assert code == 2 and "sparse" in err


def test_report_files(cli_project: Path, tmp_path: Path) -> None:
    path = _questions(cli_project, {"d02", "d03", "d12", "du02"})
    folder = tmp_path / "report"
    code, out, err = _run(str(path), "--report", str(folder), "-r", "dense", "-r", "bm25")
    assert code == 0, err
    assert "Hit@1" in out
    md = (folder / "report.md").read_text(encoding="utf-8")
    assert "## Failed questions" in md and "| metric | dense | bm25 |" in md
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    failed = [o for o in report["questions"]["dense"] if o["failed"]]
    for o in failed:  # each failure is listed with its evidence and what ranked first
        assert f"`{o['id']}`" in md
        assert "ranked first" in md
    assert (folder / "hitk.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_beir_fixture_known_answers(cli_project: Path, tmp_path: Path) -> None:
    code, out, err = _run("--beir", str(BEIR_MINI), "--json", "--report", str(tmp_path / "r"))
    assert code == 0, err
    data = json.loads(out)
    assert data["config"]["documents"] == 8 and data["config"]["queries"] == 4
    assert data["config"]["cached_embeddings"] is False
    # q1-q3 share distinctive words with their document; q4 shares none with any document.
    assert data["metrics"]["bm25"] == pytest.approx(
        {"ndcg@10": 0.75, "recall@100": 0.75, "mrr@10": 0.75}
    )
    assert data["metrics"]["dense"]["recall@100"] == 1.0  # dense ranks every document
    assert (tmp_path / "r" / "beir.md").is_file()
    code, out, _ = _run("--beir", str(BEIR_MINI), "--json")
    again = json.loads(out)
    assert again["config"]["cached_embeddings"] is True
    assert again["metrics"] == data["metrics"]


def test_beir_ranks_through_the_service(cli_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every BEIR query is asked of ``QAService.ask``; documents pool by their best passage."""
    from qa.service import QAService

    real_ask = QAService.ask
    asked: list[tuple[str, int | None, str | None, bool]] = []
    pooled: dict[str, list[str]] = {}

    def spy(
        self: QAService,
        question: str,
        k: int | None = None,
        retriever: str | None = None,
        include_low_confidence: bool = False,
        question_vector: object = None,
    ) -> object:
        answer = real_ask(self, question, k, retriever, include_low_confidence, question_vector)  # type: ignore[arg-type]
        asked.append((question, k, retriever, include_low_confidence))
        pooled[question] = list(dict.fromkeys(h.passage.doc_id for h in answer.hits))
        return answer

    monkeypatch.setattr(QAService, "ask", spy)
    code, out, err = _run("--beir", str(BEIR_MINI), "--json", "-r", "bm25")
    assert code == 0, err
    data = json.loads(out)
    assert len(asked) == 4 and {(k, r, low) for _, k, r, low in asked} == {
        (250, "bm25", True)
    }  # candidates 1000 / 4
    # q1-q3 each find their own document first; q4 shares no word with any document.
    assert sum(1 for docs in pooled.values() if docs) == 3
    assert data["metrics"]["bm25"]["ndcg@10"] == pytest.approx(0.75)
    assert data["config"]["passages"] >= data["config"]["documents"] == 8


def test_beir_real_model(
    cli_project: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("qa.service.load_embedder", lambda settings: embedder)
    code, out, err = _run("--beir", str(BEIR_MINI), "--json", "-r", "dense")
    assert code == 0, err
    dense = json.loads(out)["metrics"]["dense"]
    assert dense["mrr@10"] >= 0.75 and dense["recall@100"] == 1.0


def test_beir_missing_folder(cli_project: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    code, _, err = _run("--beir", str(tmp_path / "empty"))
    assert code == 2 and "corpus.jsonl" in err


def test_sweep_small_grid(cli_project: Path, tmp_path: Path) -> None:
    path = _questions(cli_project, {"d02", "d03", "du02"})
    folder = tmp_path / "sweep"
    args = ["--sweep", "--json", "--report", str(folder), "--sweep-chunk-tokens", "64"]
    args += ["--sweep-chunk-tokens", "128", "--sweep-overlap", "0", "--sweep-rrf-k", "10"]
    args += ["--sweep-rrf-k", "60", "--sweep-weights", "1:0.5"]
    args += ["--sweep-fusion", "rrf", "--sweep-fusion", "blend"]
    code, out, err = _run(str(path), *args)
    assert code == 0, err
    rows = json.loads(out)
    # 2 chunkings x (dense + bm25 + hybrid: RRF with 2 constants, and the z-score blend)
    assert len(rows) == 10
    hybrid = [r for r in rows if r["retriever"] == "hybrid"]
    assert {(r["fusion"], r["rrf_k"], r["dense_weight"], r["bm25_weight"]) for r in hybrid} == {
        ("rrf", 10, 1.0, 0.5),
        ("rrf", 60, 1.0, 0.5),
        ("blend", None, 1.0, 0.5),
    }
    assert {r["chunk_tokens"] for r in rows} == {64, 128}
    assert all(r["passages"] > 0 for r in rows)
    assert (folder / "sweep.md").is_file() and (folder / "sweep.json").is_file()
    assert (folder / "sweep.png").read_bytes()[:4] == b"\x89PNG"
