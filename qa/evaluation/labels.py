"""Labelled questions: load, validate, and pin each evidence string to document offsets.

Labels name evidence by its exact text, not by passage, so the same labels score
any chunking or retriever: a passage *answers* when its ``[start, end)`` span
covers at least half of the characters of one occurrence of an evidence string.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from qa.errors import QAError

# A passage answers when it covers at least this share of one evidence occurrence.
MIN_COVERED = 0.5


class EvaluationError(QAError):
    """A question file, a label or a benchmark folder cannot be used."""


@dataclass(frozen=True, slots=True)
class EvalQuestion:
    """One line of the questions file; empty ``evidence`` means unanswerable."""

    id: str
    question: str
    evidence: tuple[str, ...]

    @property
    def answerable(self) -> bool:
        return bool(self.evidence)


@dataclass(frozen=True, slots=True)
class Occurrence:
    """Where one evidence string appears: a half-open span of one document."""

    doc_id: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Labelled:
    """A question with every occurrence of each of its evidence strings located.

    ``occurrences[i]`` lists the places where ``question.evidence[i]`` appears.
    """

    question: EvalQuestion
    occurrences: tuple[tuple[Occurrence, ...], ...]

    @property
    def id(self) -> str:
        return self.question.id

    @property
    def answerable(self) -> bool:
        return self.question.answerable

    def answered_by(self, doc_id: str, start: int, end: int) -> frozenset[int]:
        """Indexes of the evidence strings a span ``[start, end)`` of ``doc_id`` answers."""
        found: set[int] = set()
        for index, places in enumerate(self.occurrences):
            for place in places:
                if place.doc_id != doc_id:
                    continue
                covered = max(0, min(end, place.end) - max(start, place.start))
                if covered > 0 and covered >= MIN_COVERED * (place.end - place.start):
                    found.add(index)
                    break
        return frozenset(found)

    def overlaps(self, doc_id: str, start: int, end: int) -> bool:
        """Whether a span (a quote) shares at least one character with any evidence."""
        return any(
            place.doc_id == doc_id and min(end, place.end) > max(start, place.start)
            for places in self.occurrences
            for place in places
        )


def parse_questions(lines: Iterable[str], source: str = "<questions>") -> list[EvalQuestion]:
    """Validate JSON lines ``{"id", "question", "evidence": [str, ...]}``; ids must be unique."""
    questions: list[EvalQuestion] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{source} line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvaluationError(f"{where}: not valid JSON ({exc.msg})") from exc
        if not isinstance(record, dict):
            raise EvaluationError(f"{where}: expected a JSON object")
        qid, text, evidence = record.get("id"), record.get("question"), record.get("evidence")
        if not isinstance(qid, str) or not qid.strip():
            raise EvaluationError(f"{where}: 'id' must be a non-empty string")
        if qid in seen:
            raise EvaluationError(f"{where}: duplicate question id {qid!r}")
        if not isinstance(text, str) or not text.strip():
            raise EvaluationError(f"{where}: question {qid!r} has no 'question' text")
        if not isinstance(evidence, list) or not all(
            isinstance(e, str) and e.strip() for e in evidence
        ):
            raise EvaluationError(
                f"{where}: question {qid!r} needs 'evidence' as a list of non-empty strings"
            )
        seen.add(qid)
        questions.append(EvalQuestion(qid, text, tuple(evidence)))
    if not questions:
        raise EvaluationError(f"{source} holds no questions")
    return questions


def load_questions(path: Path) -> list[EvalQuestion]:
    """Read and validate a questions file (JSON lines)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EvaluationError(f"cannot read questions file {path}: {exc.strerror}") from exc
    return parse_questions(text.splitlines(), str(path))


def find_all(text: str, needle: str) -> list[int]:
    """Every start offset of ``needle`` in ``text``, overlapping matches included."""
    found, at = [], text.find(needle)
    while at != -1:
        found.append(at)
        at = text.find(needle, at + 1)
    return found


def locate(questions: Sequence[EvalQuestion], documents: Mapping[str, str]) -> list[Labelled]:
    """Pin every evidence string to its occurrences in ``documents`` (``doc_id -> text``).

    An evidence string found in no document is a labelling error, not a miss:
    it would make the question impossible to answer, so it fails loudly.
    """
    labelled = []
    for q in questions:
        occurrences = []
        for evidence in q.evidence:
            places = tuple(
                Occurrence(doc_id, start, start + len(evidence))
                for doc_id, text in documents.items()
                for start in find_all(text, evidence)
            )
            if not places:
                short = evidence if len(evidence) <= 80 else evidence[:77] + "..."
                raise EvaluationError(
                    f"question {q.id!r}: evidence {short!r} is not found in any document"
                )
            occurrences.append(places)
        labelled.append(Labelled(q, tuple(occurrences)))
    return labelled
