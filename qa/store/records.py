"""Passages as plain JSON records: how every store writes them and reads them back."""

from __future__ import annotations

from collections.abc import Mapping

from qa.errors import CorruptIndexError
from qa.store.snapshot import DocumentInfo
from qa.types import Passage, Span


def encode_passage(p: Passage) -> dict[str, object]:
    return {
        "id": p.passage_id,
        "doc_id": p.doc_id,
        "title": p.title,
        "section": p.section,
        "paragraphs": list(p.paragraphs),
        "start": p.start,
        "end": p.end,
        "lines": [p.line_start, p.line_end],
        "tokens": p.token_count,
        "sentences": [[s.start, s.end] for s in p.sentences],
        "text": p.text,
    }


def decode_passage(record: dict[str, object], documents: Mapping[str, DocumentInfo]) -> Passage:
    """A passage back from its record, checked against its document's text."""
    r = record
    lines = r["lines"]
    sentences = r["sentences"]
    assert isinstance(lines, list) and isinstance(sentences, list)
    passage = Passage(
        passage_id=str(r["id"]),
        doc_id=str(r["doc_id"]),
        title=str(r["title"]),
        section=str(r["section"]),
        paragraphs=tuple(int(x) for x in r["paragraphs"]),  # type: ignore[attr-defined]
        start=int(r["start"]),  # type: ignore[call-overload]
        end=int(r["end"]),  # type: ignore[call-overload]
        line_start=int(lines[0]),
        line_end=int(lines[1]),
        text=str(r["text"]),
        token_count=int(r["tokens"]),  # type: ignore[call-overload]
        sentences=tuple(Span(int(s), int(e)) for s, e in sentences),
    )
    doc = documents.get(passage.doc_id)
    if doc is None or doc.text[passage.start : passage.end] != passage.text:
        raise CorruptIndexError(f"passage {passage.passage_id} does not match its document")
    return passage
