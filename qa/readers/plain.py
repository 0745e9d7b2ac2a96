"""What plain text and Markdown share: UTF-8 decoding and a line-by-line block parser.

Offsets are character offsets into the text decoded from the file's bytes with
no newline translation (as ``open(path, encoding="utf-8", newline="")`` reads
it), after dropping one leading UTF-8 byte-order mark if present.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from qa.errors import DocumentError
from qa.offsets import line_ends, line_starts, trim_span
from qa.types import Block, BlockKind

BOM = "\ufeff"

_BULLET = re.compile(r"^[ \t]*(?:[•◦▪‣●○■□–—*+-]|\d{1,3}[.)])[ \t]+")
_MD_HEADING = re.compile(r"^[ \t]{0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$")
_FINAL_PUNCTUATION = '.!?:;,…"”’)]'
_HEADING_MAX_CHARS = 90
_HEADING_MAX_WORDS = 12


def decode_text(raw: bytes, path: Path) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError(path, f"is not valid UTF-8 (byte {exc.start})") from exc
    # Same as reading with newline="": decode() never translates newlines.
    if text.startswith(BOM):
        text = text[len(BOM) :]
    if not text.strip():
        raise DocumentError(path, "is empty")
    return text


@dataclass(frozen=True, slots=True)
class _Line:
    start: int
    end: int  # without the line break
    text: str

    @property
    def blank(self) -> bool:
        return not self.text.strip()


def _lines(text: str) -> Iterator[_Line]:
    for start, end in zip(line_starts(text), line_ends(text), strict=True):
        yield _Line(start, end, text[start:end])


def _looks_like_heading(line: str) -> bool:
    stripped = line.strip()
    if not stripped or _BULLET.match(line):
        return False
    if len(stripped) > _HEADING_MAX_CHARS or len(stripped.split()) > _HEADING_MAX_WORDS:
        return False
    if stripped[-1] in _FINAL_PUNCTUATION:
        return False
    return stripped[0].isupper() or stripped[0].isdigit()


def parse_blocks(text: str, markdown: bool) -> tuple[str, list[Block]]:
    """Split a document into title, headings, paragraphs and bullet items.

    Plain text: the first non-blank line is the title; a line standing alone
    between blank lines that is short and has no final punctuation is a heading.
    Markdown: ``#`` headings, the first one being the title (else the first line).
    Consecutive non-blank lines form one paragraph; each bullet line starts an item.
    """
    blocks: list[Block] = []
    title = ""
    section = ""
    paragraph = 0
    lines = list(_lines(text))

    def add(kind: BlockKind, start: int, end: int) -> None:
        nonlocal paragraph
        start, end = trim_span(text, start, end)
        if start == end:
            return
        if kind in (BlockKind.PARAGRAPH, BlockKind.BULLET):
            paragraph += 1
            number = paragraph
        else:
            number = 0
        blocks.append(Block(kind, start, end, text[start:end], section, number))

    i = 0
    current: tuple[BlockKind, int, int] | None = None  # open paragraph or bullet

    def flush() -> None:
        nonlocal current
        if current is not None:
            add(*current)
            current = None

    while i < len(lines):
        line = lines[i]
        if line.blank:
            flush()
            i += 1
            continue
        md = _MD_HEADING.match(line.text) if markdown else None
        alone = (i == 0 or lines[i - 1].blank) and (i + 1 >= len(lines) or lines[i + 1].blank)
        is_title = not title and (md is not None or not markdown)
        if (
            md is not None
            or is_title
            or (not markdown and alone and _looks_like_heading(line.text))
        ):
            flush()
            if md is not None:
                offset = line.start + md.start(2)
                start, end = offset, offset + len(md.group(2))
            else:
                start, end = line.start, line.end
            start, end = trim_span(text, start, end)
            heading = text[start:end]
            if start == end:
                i += 1
                continue
            if is_title:
                title = heading
                section = heading
                blocks.append(Block(BlockKind.TITLE, start, end, heading, heading, 0))
            else:
                section = heading
                blocks.append(Block(BlockKind.HEADING, start, end, heading, heading, 0))
            paragraph = 0
            i += 1
            continue
        if _BULLET.match(line.text):
            flush()
            current = (BlockKind.BULLET, line.start, line.end)
        elif current is None:
            current = (BlockKind.PARAGRAPH, line.start, line.end)
        else:
            current = (current[0], current[1], line.end)
        i += 1
    flush()
    return title, blocks
