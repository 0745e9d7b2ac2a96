"""Character offsets and line numbers in a document's text.

Readers use them to cut blocks, the chunker to cut passages; both must agree on
what a line is, so the rules live here once.
"""

from __future__ import annotations

import bisect
import re

_BREAK = re.compile(r"\r\n|\r|\n")


def line_starts(text: str) -> list[int]:
    """Offsets where each line begins; \r\n, \r and \n each end a line."""
    return [0, *(m.end() for m in _BREAK.finditer(text))]


def line_ends(text: str) -> list[int]:
    """Offsets where each line ends, without its line break."""
    return [m.start() for m in _BREAK.finditer(text)] + [len(text)]


def line_number(starts: list[int], offset: int) -> int:
    """1-based line holding ``offset``, given ``line_starts(text)``."""
    return bisect.bisect_right(starts, offset)


def trim_span(text: str, start: int, end: int) -> tuple[int, int]:
    """Shrink ``[start, end)`` past white space at both ends."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end
