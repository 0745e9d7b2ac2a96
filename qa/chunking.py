"""Split documents into passages: sentences packed up to a token budget.

Rules, in order of precedence:
- a passage never crosses a section boundary;
- the model sees the whole passage: its embedding text (headings + passage)
  never exceeds the model's own ``max_seq_length``, counted with its tokenizer;
- its text is at most ``chunk_tokens`` tiktoken tokens;
- consecutive passages share ``overlap`` sentences;
- a sentence too long for a passage is split at word boundaries (and a word too
  long for one, at character boundaries).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from qa.config import ChunkSettings
from qa.offsets import line_number, line_starts, trim_span
from qa.types import Block, BlockKind, Document, Passage, Span, embedding_text

if TYPE_CHECKING:
    import pysbd
    import tiktoken

TokenCount = Callable[[str], int]

_WORD = re.compile(r"\S+\s*")


@dataclass(frozen=True, slots=True)
class ModelLimit:
    """The embedding model's own token counter and its input limit."""

    count: TokenCount
    max_tokens: int


@lru_cache(maxsize=4)
def _encoding(name: str) -> tiktoken.Encoding:
    import tiktoken

    return tiktoken.get_encoding(name)


def tiktoken_counter(name: str) -> TokenCount:
    encoding = _encoding(name)

    def count(text: str) -> int:
        return len(encoding.encode(text, disallowed_special=()))

    return count


@lru_cache(maxsize=1)
def _segmenter() -> pysbd.Segmenter:
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


def sentence_spans(text: str, start: int, end: int) -> list[Span]:
    """Sentences of ``text[start:end]`` as trimmed spans that together cover it.

    pysbd only proposes where sentences begin; each sentence then runs to the
    next beginning, so no character is ever dropped whatever the segmenter does.
    """
    block = text[start:end]
    starts = [0]
    cursor = 0
    for sentence in _segmenter().segment(block):
        needle = sentence.strip()
        if not needle:
            continue
        found = block.find(needle, cursor)
        if found == -1:
            continue
        if found > starts[-1]:
            starts.append(found)
        cursor = found + len(needle)
    spans = []
    for begin, finish in zip(starts, [*starts[1:], len(block)], strict=True):
        s, e = trim_span(text, start + begin, start + finish)
        if s < e:
            spans.append(Span(s, e))
    return spans


class Chunker:
    """Turns documents into passages. Deterministic: same input, same passages."""

    def __init__(self, settings: ChunkSettings, limit: ModelLimit) -> None:
        self.settings = settings
        self.limit = limit
        self._count = tiktoken_counter(settings.encoding)

    def fits(self, doc: Document, section: str, start: int, end: int) -> bool:
        text = doc.text[start:end]
        if self._count(text) > self.settings.chunk_tokens:
            return False
        return self.limit.count(embedding_text(doc.title, section, text)) <= self.limit.max_tokens

    def _split_long(self, doc: Document, section: str, span: Span) -> Iterator[Span]:
        """Split a span that does not fit at word boundaries, greedily."""
        pieces = [
            Span(span.start + m.start(), span.start + m.end())
            for m in _WORD.finditer(doc.text[span.start : span.end])
        ]
        current: Span | None = None
        for piece in pieces:
            if current is not None and self.fits(doc, section, current.start, piece.end):
                current = Span(current.start, piece.end)
                continue
            if current is not None:
                yield Span(*trim_span(doc.text, current.start, current.end))
            if self.fits(doc, section, piece.start, piece.end):
                current = piece
            else:  # a single "word" over the limit: cut it by characters
                *whole, current = self._split_word(doc, section, piece)
                yield from whole
        if current is not None:
            yield Span(*trim_span(doc.text, current.start, current.end))

    def _split_word(self, doc: Document, section: str, span: Span) -> list[Span]:
        out: list[Span] = []
        start = span.start
        while start < span.end:
            lo, hi = start + 1, span.end  # longest prefix that fits (at least one char)
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if self.fits(doc, section, start, mid):
                    lo = mid
                else:
                    hi = mid - 1
            s, e = trim_span(doc.text, start, lo)
            if s < e:
                out.append(Span(s, e))
            start = lo
        return out

    def _units(self, doc: Document, section: str, blocks: list[Block]) -> list[tuple[Span, int]]:
        """Sentences (or pieces of them) of a section, each with its paragraph number."""
        units: list[tuple[Span, int]] = []
        for block in blocks:
            for span in sentence_spans(doc.text, block.start, block.end):
                if self.fits(doc, section, span.start, span.end):
                    units.append((span, block.paragraph))
                else:
                    units.extend((p, block.paragraph) for p in self._split_long(doc, section, span))
        return units

    def _pack(
        self, doc: Document, section: str, units: list[tuple[Span, int]]
    ) -> Iterator[list[tuple[Span, int]]]:
        window: list[tuple[Span, int]] = []
        fresh = 0  # units in the window not shared with the previous passage
        for unit in units:
            if window and self.fits(doc, section, window[0][0].start, unit[0].end):
                window.append(unit)
                fresh += 1
                continue
            if window:
                yield window
                keep = min(self.settings.overlap, len(window) - 1) if fresh else 0
                window = window[len(window) - keep :] if keep else []
                while window and not self.fits(doc, section, window[0][0].start, unit[0].end):
                    window = window[1:]
            window.append(unit)
            fresh = 1
        if window and fresh:
            yield window

    def chunk(self, doc: Document) -> list[Passage]:
        starts = line_starts(doc.text)
        passages: list[Passage] = []
        for section, blocks in _sections(doc.blocks):
            for window in self._pack(doc, section, self._units(doc, section, blocks)):
                start, end = window[0][0].start, window[-1][0].end
                text = doc.text[start:end]
                passages.append(
                    Passage(
                        passage_id=passage_id(doc.sha256, start, end),
                        doc_id=doc.doc_id,
                        title=doc.title,
                        section=section,
                        paragraphs=tuple(sorted({p for _, p in window})),
                        start=start,
                        end=end,
                        line_start=line_number(starts, start),
                        line_end=line_number(starts, end - 1),
                        text=text,
                        token_count=self._count(text),
                        sentences=tuple(span for span, _ in window),
                    )
                )
        return passages


def _sections(blocks: Iterable[Block]) -> Iterator[tuple[str, list[Block]]]:
    """Content blocks grouped by the heading above them."""
    group: list[Block] = []
    section: str | None = None
    for block in blocks:
        if block.kind in (BlockKind.TITLE, BlockKind.HEADING):
            if group and section is not None:
                yield section, group
            group, section = [], block.section
            continue
        if section is None:
            section = block.section
        group.append(block)
    if group and section is not None:
        yield section, group


def passage_id(doc_sha256: str, start: int, end: int) -> str:
    """Stable across rebuilds: the same bytes and offsets give the same id."""
    return hashlib.sha256(f"{doc_sha256}:{start}:{end}".encode()).hexdigest()[:16]
