"""Plain text (``.txt``): the first line is the title, short lone lines are headings."""

from __future__ import annotations

from pathlib import Path

from qa.readers.plain import decode_text, parse_blocks
from qa.readers.protocol import Reading


class TextReader:
    def read(self, raw: bytes, path: Path) -> Reading:
        text = decode_text(raw, path)
        title, blocks = parse_blocks(text, markdown=False)
        return Reading(text, title, tuple(blocks))
