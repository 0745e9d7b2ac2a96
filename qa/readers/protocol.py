"""What a reader turns a file into, and the small interface every format implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from qa.types import Block


@dataclass(frozen=True, slots=True)
class Reading:
    """A file as text plus structure.

    Every block satisfies ``text[block.start:block.end] == block.text``, so a
    passage cut from the blocks can always be quoted back from the text.
    ``pages`` holds the offset where each page starts, for formats that have
    pages (empty for plain text and Markdown).
    """

    text: str
    title: str
    blocks: tuple[Block, ...]
    pages: tuple[int, ...] = field(default=())


class Reader(Protocol):
    """One document format: the raw bytes of a file in, a ``Reading`` out.

    Raises ``DocumentError`` naming the file when the bytes cannot be read.
    """

    def read(self, raw: bytes, path: Path) -> Reading: ...
