"""Retrieval evaluation: labelled questions, BEIR benchmarks and parameter sweeps.

Typical use from Python::

    from qa.evaluation import load_questions, evaluate_questions
    result = evaluate_questions(service, load_questions(path), ["dense", "bm25", "hybrid"])
    result.metrics["hybrid"].hit_at[5]
"""

from qa.evaluation.labels import EvaluationError, Labelled, Question, load_questions, locate
from qa.evaluation.runner import (
    EvalResult,
    Outcome,
    RetrieverMetrics,
    evaluate_questions,
    options_with,
    variant_service,
)

__all__ = [
    "EvalResult",
    "EvaluationError",
    "Labelled",
    "Outcome",
    "Question",
    "RetrieverMetrics",
    "evaluate_questions",
    "load_questions",
    "locate",
    "options_with",
    "variant_service",
]
