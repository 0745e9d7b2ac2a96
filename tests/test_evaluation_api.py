"""The Python API the retrieval work uses: evaluate a service, sweep a grid."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.evaluation import (
    EvalQuestion,
    EvaluationError,
    SweepGrid,
    best,
    evaluate_questions,
    load_questions,
    locate,
    sweep,
)
from qa.indexing.seeds import load_documents
from qa.service import QAService
from tests.helpers import QUESTIONS, FakeEmbedder, make_settings


def test_essay_labels_all_located(essay_service: QAService) -> None:
    """Every evidence string in eval/questions.jsonl is in the essay (labels stay valid)."""
    questions = load_questions(QUESTIONS)
    assert sum(q.answerable for q in questions) == 34
    assert sum(not q.answerable for q in questions) == 3
    texts = {d.doc_id: d.text for d in essay_service.documents()}
    assert all(all(places) for label in locate(questions, texts) for places in label.occurrences)
    # A real-model run on a few questions (the full set is `qa eval`'s job).
    subset = [q for q in questions if q.id in {"d01", "d02", "d03", "d05", "d07", "du02"}]
    result = evaluate_questions(essay_service, subset, ["hybrid"])
    metrics = result.metrics["hybrid"]
    assert (metrics.answerable, metrics.unanswerable) == (5, 1)
    assert metrics.hit_at[10] >= 0.6  # a floor well under what the defaults measure
    assert result.config["passages"] == len(essay_service.snapshot.passages)


def test_evidence_missing_from_the_index(essay_service: QAService) -> None:
    with pytest.raises(EvaluationError, match="q-missing"):
        evaluate_questions(
            essay_service, [EvalQuestion("q-missing", "?", ("not in the essay xyz",))]
        )


def test_sweep_api_with_options(project: Path) -> None:
    settings = make_settings(project)
    documents = load_documents(settings.seeds_dir)
    questions = [q for q in load_questions(QUESTIONS) if q.id in {"d02", "d03", "du02"}]
    grid = SweepGrid(
        chunk_tokens=(96,),
        overlap=(0, 1),
        rrf_k=(30,),
        retrievers=("bm25", "hybrid"),
        options=({}, {"candidates": 10}),
    )
    cache: dict[tuple[int, int, str], object] = {}
    rows = sweep(documents, FakeEmbedder(), questions, grid, settings, snapshots=cache)  # type: ignore[arg-type]
    assert len(rows) == grid.size == 8
    assert len(cache) == 2  # one snapshot per chunking, reused across option settings
    assert {r.flat().get("candidates") for r in rows} == {None, 10}
    top = best(rows, "mrr", "bm25")
    assert top.retriever == "bm25" and top.metrics.mrr == max(
        r.metrics.mrr for r in rows if r.retriever == "bm25"
    )
