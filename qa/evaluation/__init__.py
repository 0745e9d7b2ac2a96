"""Retrieval evaluation: labelled questions, BEIR benchmarks and parameter sweeps.

Typical use from Python::

    from qa.evaluation import load_questions, evaluate_questions
    result = evaluate_questions(service, load_questions(path), ["dense", "bm25", "hybrid"])
    result.metrics["hybrid"].hit_at[5]

    rows = sweep(documents, embedder, questions, SweepGrid(chunk_tokens=(96, 128)), settings)
    best(rows, "ndcg", "hybrid").flat()

    run_beir(Path("../shared/benchmarks/scifact"), embedder, settings.chunking, settings.cache_dir)
"""

from qa.evaluation.beir import BeirResult, run_beir
from qa.evaluation.labels import EvalQuestion, EvaluationError, Labelled, load_questions, locate
from qa.evaluation.runner import (
    EvalResult,
    Outcome,
    RetrieverMetrics,
    evaluate_questions,
    options_with,
    variant_service,
)
from qa.evaluation.sweep import SweepGrid, SweepRow, best, sweep

__all__ = [
    "BeirResult",
    "EvalQuestion",
    "EvalResult",
    "EvaluationError",
    "Labelled",
    "Outcome",
    "RetrieverMetrics",
    "SweepGrid",
    "SweepRow",
    "best",
    "evaluate_questions",
    "load_questions",
    "locate",
    "options_with",
    "run_beir",
    "sweep",
    "variant_service",
]
