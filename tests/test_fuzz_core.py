"""Hypothesis against the core: any Unicode question gets a valid answer or a clear error.

Emoji, right-to-left text, control characters, NUL, lone surrogates (JSON can carry
``"\\ud800"``) and 10,000-character strings, which the core must handle even though
the API stops them at its length limit.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from qa.api import create_app
from qa.batching import FastAsk
from qa.embedding import Vectors
from qa.errors import InvalidQuestionError, QAError
from qa.service import QAService
from qa.types import Answer
from tests.helpers import FakeEmbedder, make_settings

EMOJI = st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF)
RTL = st.characters(min_codepoint=0x0590, max_codepoint=0x06FF)  # Hebrew and Arabic
CONTROL = st.characters(categories=["Cc", "Cf", "Zl", "Zp"])  # NUL, bidi marks, separators
SURROGATE = st.characters(categories=["Cs"])
ANY = st.characters(codec=None, categories=None)  # every code point, surrogates included
WORDS = st.sampled_from(["Russia", "China", "alliance", "Trump", "oil", "partnership"])

QUESTIONS = st.one_of(
    st.text(ANY, max_size=200),
    st.lists(st.one_of(EMOJI, RTL, CONTROL, WORDS.map(lambda w: f" {w} ")), max_size=60).map(
        "".join
    ),
    st.lists(st.one_of(WORDS, st.text(ANY, max_size=3)), max_size=30).map(" ".join),
    st.text(st.one_of(ANY, EMOJI, RTL), min_size=9_000, max_size=10_000),
)


def check_answer(service: QAService, question: str, k: int) -> None:
    """A valid answer: at most k hits from the index, with finite scores and in-bounds quotes."""
    try:
        answer = service.ask(question, k=k, include_low_confidence=True)
    except QAError as exc:
        assert isinstance(exc, InvalidQuestionError), exc
        assert str(exc)  # a clear message
        cleaned = question.strip()
        assert not cleaned or any(0xD800 <= ord(c) <= 0xDFFF for c in cleaned)
        return
    assert isinstance(answer, Answer) and answer.question == question
    assert len(answer.hits) <= k
    assert [h.rank for h in answer.hits] == list(range(1, len(answer.hits) + 1))
    ids = [h.passage.passage_id for h in answer.hits]
    assert len(set(ids)) == len(ids)
    for hit in answer.hits:
        assert math.isfinite(hit.score)
        assert service.passage(hit.passage.passage_id) is hit.passage
        passage = hit.passage
        assert passage.start <= hit.quote.start < hit.quote.end <= passage.end
        text = service.document(passage.doc_id).text
        assert text[hit.quote.start : hit.quote.end] == hit.quote.text


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(question=QUESTIONS, k=st.integers(min_value=1, max_value=10))
@example(question="\x00", k=5)
@example(question="Is it an alliance?\x00\x00\x00", k=5)
@example(question="Russia \ud800 China", k=5)
@example(question="\udfff", k=1)
@example(question="\u202e\u05d4\u05d0\u05dd \u0631\u0648\u0633\u064a\u0627 alliance? 🇷🇺🤝🇨🇳", k=3)
@example(question="🤔" * 10_000, k=5)
@example(question="alliance " * 1_250, k=10)  # 10,000 characters, one token repeated
@example(question="\u200b\u200d\ufeff", k=1)  # zero-width only: not blank to Python
@example(question="\t\n\r\x0b\x0c \x1c\x1d\x1e\x1f\x85\xa0\u3000", k=1)  # all whitespace
def test_any_question_gets_an_answer_or_a_clear_error(
    essay_service: QAService, question: str, k: int
) -> None:
    check_answer(essay_service, question, k)


def test_lone_surrogate_in_json_is_a_422_not_a_500(fake_essay_service: QAService) -> None:
    """Found by the fuzzing above: it used to crash the tokenizer, then the JSON encoder."""
    with TestClient(create_app(fake_essay_service.settings, service=fake_essay_service)) as client:
        for raw in (b'{"question": "Russia \\ud800 China"}', b'{"question": "\\udfff"}'):
            response = client.post(
                "/ask", content=raw, headers={"Content-Type": "application/json"}
            )
            assert response.status_code == 422, response.text
            assert response.json()["error"]["code"] == "invalid_question"
            assert "surrogate" in response.json()["error"]["message"]
        nul = client.post("/ask", json={"question": "alliance\x00"})
        assert nul.status_code == 200 and nul.json()["question"] == "alliance\x00"


class PoisonEmbedder(FakeEmbedder):
    """A model that fails on one input, to prove a bad question only fails itself."""

    def encode(self, texts: list[str], batch_size: int = 32) -> Vectors:
        if any("POISON" in t for t in texts):
            raise TypeError("the tokenizer cannot take this input")
        return super().encode(texts, batch_size)


def test_one_bad_question_does_not_fail_its_batch_mates(project: Path) -> None:
    settings = make_settings(project, cache_size=0)
    service = QAService.open(settings, PoisonEmbedder(), rebuild=True)
    fast = FastAsk(service, max_batch=8, wait_ms=50)
    questions = ["Russia and China", "POISON question", "an alliance?", "oil and gas"]

    async def run() -> list[Answer | BaseException]:
        try:
            # Two rounds: the second gathers a full batch (the batcher waits once busy).
            await asyncio.gather(*(fast.ask(q) for q in questions), return_exceptions=True)
            return await asyncio.gather(*(fast.ask(q) for q in questions), return_exceptions=True)
        finally:
            await fast.close()

    results = asyncio.run(run())
    assert max(fast.batcher.batch_sizes) > 1  # they really shared a batch
    for question, result in zip(questions, results, strict=True):
        if "POISON" in question:
            assert isinstance(result, TypeError)
        else:
            assert isinstance(result, Answer), result
            alone = service.ask(question)
            assert [h.passage.passage_id for h in result.hits] == [
                h.passage.passage_id for h in alone.hits
            ]


@pytest.mark.parametrize("k", [0, -1, 51])
def test_out_of_range_k_is_a_clear_error(fake_essay_service: QAService, k: int) -> None:
    with pytest.raises(InvalidQuestionError, match="k must be between 1 and 50"):
        fake_essay_service.ask("alliance", k=k)
