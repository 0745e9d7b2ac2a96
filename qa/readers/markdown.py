"""Markdown (``.md``): ``#`` headings give the structure, the first one is the title."""

from __future__ import annotations

from pathlib import Path

from qa.readers.plain import decode_text, parse_blocks
from qa.readers.protocol import Reading


class MarkdownReader:
    def read(self, raw: bytes, path: Path) -> Reading:
        text = decode_text(raw, path)
        title, blocks = parse_blocks(text, markdown=True)
        return Reading(text, title, tuple(blocks))
