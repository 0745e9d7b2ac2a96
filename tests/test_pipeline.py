"""The ranking pipeline: its stages, their order, and a stage added in one place."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from qa.retrieval import pipeline
from qa.retrieval.pipeline import ANSWERING, PIPELINE, RANKING, Found, Query
from qa.service import QAService
from tests.helpers import FakeEmbedder, make_settings

QUESTION = "Is the Sino-Russian relationship an alliance?"


def query(service: QAService, k: int = 5, **fields: object) -> Query:
    made = service.query(QUESTION, service.encode_question(QUESTION), k, "hybrid")
    return dataclasses.replace(made, **fields)  # type: ignore[arg-type]


def test_the_stages_run_in_the_documented_order() -> None:
    names = [stage.__name__ for stage in PIPELINE]  # type: ignore[attr-defined]
    assert names == ["candidates", "fuse", "keep_distinct", "quote", "abstain"]
    assert (*RANKING, *ANSWERING) == PIPELINE


def test_ask_is_the_pipeline_run_on_the_question(fake_essay_service: QAService) -> None:
    found = pipeline.run(query(fake_essay_service, include_low_confidence=False))
    answer = fake_essay_service.ask(QUESTION, 5)
    assert answer.hits == found.hits and len(found.hits) == 5
    assert (answer.confidence, answer.answered) == (found.confidence, found.answered)
    assert [hit.rank for hit in found.hits] == [1, 2, 3, 4, 5]


def test_each_stage_adds_its_own_part(fake_essay_service: QAService) -> None:
    q = query(fake_essay_service)
    found = Found()
    found = pipeline.candidates(q, found)
    assert len(found.dense) == len(fake_essay_service.snapshot.passages)  # depth 1000 > all
    assert 0 < len(found.bm25) <= len(found.dense)
    assert found.ranking == () and found.hits == ()
    found = pipeline.fuse(q, found)
    assert len(found.ranking) == len(found.dense)  # dense found every passage
    found = pipeline.keep_distinct(q, found)
    assert len(found.chosen) == 5 and found.hits == ()
    found = pipeline.quote(q, found)
    assert [h.passage for h in found.hits] == [p for _, p in found.chosen]
    assert all(h.passage.start <= h.quote.start < h.quote.end <= h.passage.end for h in found.hits)
    found = pipeline.abstain(q, found)
    assert found.confidence == pytest.approx(float(found.dense.scores[0]))


def test_a_rerank_stage_is_one_more_entry_in_the_list(fake_essay_service: QAService) -> None:
    """The seam: a stage slotted after fusion reorders what every later stage sees."""

    def reverse(query: Query, found: Found) -> Found:
        return dataclasses.replace(found, ranking=list(found.ranking)[::-1])

    q = query(fake_essay_service, k=3)
    plain = fake_essay_service.run(q)
    reranked = fake_essay_service.run(q, (*RANKING, reverse, *ANSWERING))
    last = pipeline.run(q, RANKING).ranking[-1]
    assert reranked.hits[0].passage == fake_essay_service.snapshot.passages[last.index]
    assert reranked.hits[0].score == last.score
    assert reranked.hits != plain.hits and len(reranked.hits) == 3


def test_abstention_keeps_or_drops_the_hits(fake_essay_service: QAService) -> None:
    strict = dataclasses.replace(fake_essay_service.options, abstain_threshold=1.0)
    shown = fake_essay_service.run(query(fake_essay_service, options=strict))
    assert shown.answered is False and len(shown.hits) == 5  # include_low_confidence
    hidden = fake_essay_service.run(
        query(fake_essay_service, options=strict, include_low_confidence=False)
    )
    assert (hidden.answered, hidden.hits) == (False, ())
    assert hidden.confidence == shown.confidence < 1.0


def test_depth_is_at_least_four_times_k(fake_essay_service: QAService) -> None:
    options = dataclasses.replace(fake_essay_service.options, candidates=3)
    assert query(fake_essay_service, k=5, options=options).candidate_depth == 20
    assert query(fake_essay_service, k=5, options=options, depth=7).candidate_depth == 7
    found = pipeline.candidates(query(fake_essay_service, k=5, options=options), Found())
    assert len(found.dense) == 20


def test_rank_is_the_service_order_before_the_shown_top_k(
    fake_essay_service: QAService,
) -> None:
    vector = fake_essay_service.encode_question(QUESTION)
    ranking = fake_essay_service.rank(QUESTION, vector, 12, "hybrid")
    assert len(ranking) >= 12  # the union of two 12-deep lists
    hits, _ = fake_essay_service.search(QUESTION, vector, 1, "hybrid")
    assert hits[0].passage == fake_essay_service.snapshot.passages[ranking[0].index]
    assert [f.score for f in ranking] == sorted((f.score for f in ranking), reverse=True)


def test_the_document_keyword_channel_gives_each_passage_its_documents_bm25(
    tmp_path: Path,
) -> None:
    """Two terms that never share a passage but share a document: passage BM25 sees each
    alone, document BM25 sees both, and gives every passage of that document one score."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    filler = " ".join(f"Sentence {n} talks about nothing in particular here." for n in range(40))
    (seeds / "both.txt").write_text(
        f"Both\n\nThe walrus rests on ice. {filler}\n\nA kestrel hovers above. {filler}\n",
        encoding="utf-8",
    )
    (seeds / "one.txt").write_text(f"One\n\nThe walrus swims. {filler}\n", encoding="utf-8")
    settings = make_settings(tmp_path, chunk_tokens=64)
    by_passage = QAService.open(settings, FakeEmbedder(), rebuild=True)
    by_document = QAService(
        settings.with_overrides(keyword_level="document"), FakeEmbedder(), by_passage.snapshot
    )
    snap = by_passage.snapshot
    question = "walrus kestrel"
    vector = by_passage.encode_question(question)

    def keyword_scores(service: QAService, **fields: object) -> dict[int, float]:
        q = dataclasses.replace(service.query(question, vector, 5, "bm25"), **fields)  # type: ignore[arg-type]
        found = pipeline.candidates(q, Found())
        return dict(zip(found.bm25.rows.tolist(), found.bm25.scores.tolist(), strict=True))

    passage_level, document_level = keyword_scores(by_passage), keyword_scores(by_document)
    rows = {d: [i for i, p in enumerate(snap.passages) if p.doc_id == d] for d in ("both", "one")}
    assert len(rows["both"]) > 2
    # Passage level: only the passages holding a term score; document level: all of them.
    assert set(passage_level) < set(rows["both"]) | set(rows["one"])
    assert set(document_level) == set(rows["both"]) | set(rows["one"])
    assert len({document_level[i] for i in rows["both"]}) == 1
    assert len({document_level[i] for i in rows["one"]}) == 1
    assert document_level[rows["both"][0]] > document_level[rows["one"][0]]  # both terms
    # The scope still holds: only the chosen document's passages are candidates.
    scoped = keyword_scores(by_document, scope=by_document.scope(["one"]))
    assert set(scoped) == set(rows["one"])
