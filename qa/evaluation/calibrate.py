"""Choose the abstention threshold from labelled questions.

The service abstains when the best dense cosine of any passage (``Answer.confidence``)
is below ``abstain_threshold``. The threshold that makes the most correct decisions
(answerable questions answered, unanswerable ones abstained) usually lies anywhere in
a gap between two scores; we take the middle of the widest such gap, so a question a
little unlike the labelled ones does not flip the decision.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from qa.evaluation.labels import EvalQuestion
from qa.service import QAService


@dataclass(frozen=True, slots=True)
class Calibration:
    threshold: float
    correct: int  # decisions the threshold gets right
    total: int
    abstained_unanswerable: int
    unanswerable: int
    wrongly_abstained: int  # answerable questions the threshold would abstain on
    answerable: int
    lowest_answerable: float | None
    highest_unanswerable: float | None


def choose_threshold(scores: Sequence[tuple[float, bool]]) -> Calibration:
    """``scores`` are ``(confidence, answerable)`` pairs; abstain when confidence < threshold."""
    if not scores:
        raise ValueError("no questions to calibrate on")
    values = sorted({s for s, _ in scores})
    # Candidate cut points: below everything, between neighbours, above everything.
    cuts = [
        (values[0] - 0.05, 0.05),
        *(((a + b) / 2, b - a) for a, b in itertools.pairwise(values)),
        (values[-1] + 0.05, 0.05),
    ]

    def correct(threshold: float) -> int:
        return sum((s >= threshold) == answerable for s, answerable in scores)

    threshold, _ = max(cuts, key=lambda cut: (correct(cut[0]), cut[1]))
    answerable = [s for s, a in scores if a]
    unanswerable = [s for s, a in scores if not a]
    return Calibration(
        threshold=round(threshold, 3),
        correct=correct(threshold),
        total=len(scores),
        abstained_unanswerable=sum(s < threshold for s in unanswerable),
        unanswerable=len(unanswerable),
        wrongly_abstained=sum(s < threshold for s in answerable),
        answerable=len(answerable),
        lowest_answerable=min(answerable) if answerable else None,
        highest_unanswerable=max(unanswerable) if unanswerable else None,
    )


def calibrate(service: QAService, questions: Sequence[EvalQuestion]) -> Calibration:
    """Ask every question once and place the threshold between the two groups."""
    scores = [
        (service.ask(q.question, 1, include_low_confidence=True).confidence, q.answerable)
        for q in questions
    ]
    return choose_threshold(scores)
