"""Plain domain records shared by every layer.

They are frozen dataclasses so the core stays free of web and CLI frameworks;
the edges turn them into pydantic models (see ``qa.schemas``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import numpy.typing as npt

# (stage, done, total): lets an edge draw a progress bar without the core knowing rich.
Progress = Callable[[str, int, int], None]


def no_progress(stage: str, done: int, total: int) -> None:
    """The ``Progress`` that reports nothing."""
    return None


class BlockKind(StrEnum):
    TITLE = "title"
    HEADING = "heading"
    PARAGRAPH = "paragraph"
    BULLET = "bullet"


@dataclass(frozen=True, slots=True)
class Block:
    """A structural unit of a document: a heading, a paragraph or a bullet item.

    ``start``/``end`` are character offsets into the document text; ``text`` is
    exactly ``document.text[start:end]``.
    """

    kind: BlockKind
    start: int
    end: int
    text: str
    section: str
    paragraph: int  # 1-based within its section; 0 for headings


@dataclass(frozen=True, slots=True)
class Document:
    doc_id: str
    title: str
    path: str  # relative to the project root, with forward slashes
    sha256: str
    text: str
    blocks: tuple[Block, ...] = field(repr=False)

    @property
    def length(self) -> int:
        return len(self.text)


@dataclass(frozen=True, slots=True)
class Span:
    """A half-open character span ``[start, end)`` inside a document."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Passage:
    """A searchable piece of one section of one document.

    Invariant: ``document.text[start:end] == text``.
    ``sentences`` are spans of the sentences packed into it, in document offsets.
    """

    passage_id: str
    doc_id: str
    title: str
    section: str
    paragraphs: tuple[int, ...]
    start: int
    end: int
    line_start: int
    line_end: int
    text: str
    token_count: int
    sentences: tuple[Span, ...]

    @property
    def embedding_text(self) -> str:
        """What the model and BM25 see: the passage with its headings for context."""
        return embedding_text(self.title, self.section, self.text)

    @property
    def keyword_text(self) -> str:
        """What BM25 indexes: the passage alone.

        Headings repeat in every passage of a section, so for BM25 they add length
        without telling passages apart; measured, leaving them out ranks better.
        """
        return self.text

    @property
    def label(self) -> str:
        return citation_label(self.title, self.section, self.paragraphs)


def embedding_text(title: str, section: str, text: str) -> str:
    heads = list(dict.fromkeys(h for h in (title, section) if h))
    return (" — ".join(heads) + "\n" + text) if heads else text


def citation_label(title: str, section: str, paragraphs: tuple[int, ...]) -> str:
    short = title if len(title) <= 40 else title[:40].rstrip(" :,;-") + "…"
    if paragraphs:
        first, last = paragraphs[0], paragraphs[-1]
        para = f"¶{first}" if first == last else f"¶{first}–{last}"
    else:
        para = ""
    parts = [short]
    if section and section != title:
        parts.append(section)
    label = " — ".join(parts)
    return f"{label} {para}".strip()


@dataclass(frozen=True, slots=True)
class Quote:
    text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Explain:
    """Why a passage was returned: each retriever's view of it."""

    dense_score: float | None
    dense_rank: int | None
    bm25_score: float | None
    bm25_rank: int | None
    fused_score: float


@dataclass(frozen=True, slots=True)
class Hit:
    rank: int
    score: float
    passage: Passage
    quote: Quote
    explain: Explain


@dataclass(frozen=True, slots=True)
class Answer:
    question: str
    answered: bool
    hits: tuple[Hit, ...]
    took_ms: float
    retriever: str
    confidence: float = 0.0  # best dense cosine of any passage; abstain below the threshold


@dataclass(frozen=True, slots=True)
class DocumentScope:
    """The documents a question may be answered from, resolved once per question.

    ``doc_ids`` are sorted and distinct (they are part of the answer cache key);
    ``rows`` are the snapshot rows of their passages, ascending. FAISS searches
    those rows only; Milvus filters on ``doc_ids`` server-side.
    """

    doc_ids: tuple[str, ...]
    rows: npt.NDArray[np.int64] = field(repr=False)
