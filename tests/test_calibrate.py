"""Abstention threshold: chosen by hand-checkable rules, then on the real essay."""

from __future__ import annotations

import pytest

from qa.config import Settings
from qa.evaluation.calibrate import calibrate, choose_threshold
from qa.evaluation.labels import load_questions
from qa.service import QAService
from tests.helpers import QUESTIONS


def test_separable_scores_cut_in_the_middle_of_the_gap() -> None:
    result = choose_threshold([(0.1, False), (0.2, False), (0.4, True), (0.7, True)])
    assert result.threshold == pytest.approx(0.3)
    assert (result.correct, result.total) == (4, 4)
    assert (result.abstained_unanswerable, result.wrongly_abstained) == (2, 0)
    assert (result.lowest_answerable, result.highest_unanswerable) == (0.4, 0.2)


def test_overlapping_scores_maximise_correct_decisions_then_the_gap() -> None:
    # Any cut in (0.35, 0.5) or (0.3, 0.35) gets 4 of 5 right; the wider gap wins.
    result = choose_threshold([(0.2, False), (0.3, True), (0.35, False), (0.5, True), (0.9, True)])
    assert result.correct == 4
    assert result.threshold == pytest.approx(0.425)
    assert result.wrongly_abstained == 1 and result.abstained_unanswerable == 2


def test_one_group_only() -> None:
    assert choose_threshold([(0.5, True), (0.6, True)]).threshold == pytest.approx(0.45)
    with pytest.raises(ValueError, match="no questions"):
        choose_threshold([])


def test_default_threshold_is_the_calibrated_one(essay_service: QAService) -> None:
    result = calibrate(essay_service, load_questions(QUESTIONS))
    assert result.wrongly_abstained == 0 and result.abstained_unanswerable == 3
    assert result.highest_unanswerable is not None and result.lowest_answerable is not None
    default = Settings.model_fields["abstain_threshold"].default
    assert result.highest_unanswerable < default < result.lowest_answerable
    assert default == pytest.approx(result.threshold, abs=0.02)
