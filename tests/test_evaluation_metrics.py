"""Metric functions and the "answers" rule, against hand-computed cases."""

from __future__ import annotations

import math

import pytest

from qa.evaluation.labels import (
    EvalQuestion,
    EvaluationError,
    Labelled,
    Occurrence,
    locate,
    parse_questions,
)
from qa.evaluation.metrics import (
    first_answer_rank,
    gains,
    hit_at,
    ndcg_at,
    percentile,
    reciprocal_rank,
)
from qa.evaluation.runner import score_answer, summarize
from qa.retrieval.fusion import reciprocal_rank_fusion
from qa.retrieval.rankers import Candidate
from qa.types import Answer, Explain, Hit, Passage, Quote, Span

NONE: frozenset[int] = frozenset()
E0 = frozenset({0})
E1 = frozenset({1})


def test_no_relevant_passage_scores_zero() -> None:
    ranking = [NONE, NONE, NONE]
    assert first_answer_rank(ranking) is None
    assert hit_at(ranking, 10) == 0.0
    assert reciprocal_rank(ranking) == 0.0
    assert ndcg_at(ranking, relevant=1) == 0.0


def test_first_answer_at_rank_three() -> None:
    ranking = [NONE, NONE, E0, NONE]
    assert hit_at(ranking, 1) == 0.0
    assert hit_at(ranking, 3) == 1.0
    assert reciprocal_rank(ranking) == pytest.approx(1 / 3)
    assert ndcg_at(ranking, 1) == pytest.approx(1 / math.log2(4))  # 0.5


def test_cutoffs_ignore_answers_below_k() -> None:
    ranking = [NONE] * 10 + [E0]
    assert reciprocal_rank(ranking, 10) == 0.0
    assert ndcg_at(ranking, 1, 10) == 0.0
    assert hit_at(ranking, 10) == 0.0


def test_duplicates_count_once() -> None:
    # Two passages answering the same evidence: the second earns nothing.
    assert gains([E0, E0, NONE]) == [1.0, 0.0, 0.0]
    assert ndcg_at([E0, E0, NONE], 1) == 1.0
    # Two evidence strings, the second found only at rank 3 after a duplicate.
    ideal = 1 + 1 / math.log2(3)
    assert ndcg_at([E0, E0, E1], 2) == pytest.approx((1 + 1 / math.log2(4)) / ideal)
    # A passage answering both evidence strings counts as one relevant passage.
    assert gains([E0 | E1, E0]) == [1.0, 0.0]
    assert ndcg_at([E0 | E1], 2) == pytest.approx(1 / ideal)


def test_ties_follow_the_retrievers_order() -> None:
    """RRF ties (rank 1 in one list each) are broken by passage index; metrics use that order."""
    fused = reciprocal_rank_fusion([Candidate(7, 0.9, 1)], [Candidate(3, 12.0, 1)])
    assert [f.index for f in fused] == [3, 7]
    assert fused[0].score == fused[1].score
    answering = {7}
    ranking = [E0 if f.index in answering else NONE for f in fused]
    assert reciprocal_rank(ranking) == 0.5
    assert ndcg_at(ranking, 1) == pytest.approx(1 / math.log2(3))


def test_percentile_and_empty() -> None:
    assert percentile([], 95) == 0.0
    assert percentile([10.0, 20.0], 50) == 15.0


# -- the "answers" rule -----------------------------------------------------------------

DOC = "x" * 100 + "E" * 40 + "y" * 100  # evidence at [100, 140)


def _label(*places: tuple[str, int, int]) -> Labelled:
    q = EvalQuestion("q1", "what?", ("E" * 40,))
    return Labelled(q, (tuple(Occurrence(d, s, e) for d, s, e in places),))


def test_evidence_spanning_two_passages() -> None:
    label = _label(("doc", 100, 140))
    # Split 20/20: both passages cover exactly half, so both answer.
    assert label.answered_by("doc", 0, 120) == E0
    assert label.answered_by("doc", 120, 240) == E0
    # Split 25/15: only the passage holding the larger part answers.
    assert label.answered_by("doc", 0, 125) == E0
    assert label.answered_by("doc", 125, 240) == NONE
    # Another document never answers.
    assert label.answered_by("other", 0, 240) == NONE


def test_any_occurrence_counts() -> None:
    label = _label(("doc", 100, 140), ("doc", 300, 340))
    assert label.answered_by("doc", 290, 400) == E0
    assert label.overlaps("doc", 339, 345)
    assert not label.overlaps("doc", 140, 150)  # half-open spans


def test_locate_finds_every_occurrence() -> None:
    docs = {"a": "one two one", "b": "no match", "c": "one"}
    [label] = locate([EvalQuestion("q", "?", ("one",))], docs)
    assert label.occurrences == (
        (Occurrence("a", 0, 3), Occurrence("a", 8, 11), Occurrence("c", 0, 3)),
    )


def test_missing_evidence_names_the_question() -> None:
    questions = [EvalQuestion("ok", "?", ("two",)), EvalQuestion("bad-7", "?", ("absent text",))]
    with pytest.raises(EvaluationError, match="bad-7"):
        locate(questions, {"a": "one two"})


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("not json", "not valid JSON"),
        ('{"question": "q", "evidence": []}', "'id'"),
        ('{"id": "x", "question": "", "evidence": []}', "no 'question'"),
        ('{"id": "x", "question": "q", "evidence": "text"}', "list of non-empty strings"),
    ],
)
def test_bad_question_lines(line: str, problem: str) -> None:
    with pytest.raises(EvaluationError, match=problem):
        parse_questions([line])


def test_duplicate_ids_rejected() -> None:
    line = '{"id": "x", "question": "q", "evidence": []}'
    with pytest.raises(EvaluationError, match="duplicate"):
        parse_questions([line, line])


# -- scoring an Answer --------------------------------------------------------------------


def _hit(rank: int, start: int, end: int, quote: tuple[int, int]) -> Hit:
    passage = Passage(
        passage_id=f"p{start}",
        doc_id="doc",
        title="T",
        section="T",
        paragraphs=(1,),
        start=start,
        end=end,
        line_start=1,
        line_end=1,
        text=DOC[start:end],
        token_count=1,
        sentences=(Span(start, end),),
    )
    explain = Explain(None, None, None, None, 1.0 / rank)
    return Hit(rank, 1.0 / rank, passage, Quote(DOC[quote[0] : quote[1]], *quote), explain)


def test_score_answer_quote_and_rank() -> None:
    label = _label(("doc", 100, 140))
    hits = (
        _hit(1, 150, 240, (150, 160)),
        _hit(2, 90, 150, (95, 105)),
        _hit(3, 100, 140, (100, 110)),
    )
    answer = Answer("what?", True, hits, 12.0, "hybrid")
    outcome = score_answer(label, answer, k=10)
    assert outcome.first_rank == 2
    assert outcome.reciprocal_rank == 0.5
    assert outcome.quote_ok is True  # the rank-2 quote [95, 105) overlaps [100, 140)
    assert outcome.failed
    assert outcome.top is not None and outcome.top.start == 150
    # Quote of the top answering passage misses the evidence: not accurate.
    one = (_hit(1, 90, 150, (90, 100)),)
    outcome = score_answer(label, Answer("what?", True, one, 5.0, "dense"), k=10)
    assert outcome.first_rank == 1 and outcome.quote_ok is False


def test_summarize_abstention() -> None:
    label = _label(("doc", 100, 140))
    nothing = Labelled(EvalQuestion("u1", "who won?", ()), ())
    answered = score_answer(
        label, Answer("?", False, (_hit(1, 100, 140, (100, 140)),), 4.0, "d"), 10
    )
    abstained = score_answer(nothing, Answer("?", False, (_hit(1, 0, 50, (0, 5)),), 6.0, "d"), 10)
    metrics = summarize("dense", [answered, abstained], 10)
    assert metrics.hit_at == {1: 1.0, 3: 1.0, 5: 1.0, 10: 1.0}
    assert metrics.quote_accuracy == 1.0
    assert metrics.abstention_rate == 1.0
    assert metrics.wrongly_abstained == 1
    assert metrics.latency_mean_ms == 5.0
    assert not abstained.failed
