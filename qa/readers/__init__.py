"""Document formats behind one seam: a ``Reader`` per file suffix.

Adding a format is one module here and one line in ``READERS``; nothing else in
the package knows which formats exist.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from qa.errors import DocumentError
from qa.readers.markdown import MarkdownReader
from qa.readers.protocol import Reader, Reading
from qa.readers.text import TextReader
from qa.types import BlockKind, Document

READERS: dict[str, Reader] = {
    ".txt": TextReader(),
    ".md": MarkdownReader(),
}
SUFFIXES = tuple(READERS)


def reader_for(path: Path) -> Reader:
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise DocumentError(path, f"has an unsupported type (supported: {', '.join(SUFFIXES)})")
    return reader


def read_document(path: Path, doc_id: str, rel_path: str) -> Document:
    """Read one file into a ``Document`` through the reader for its suffix."""
    reader = reader_for(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DocumentError(path, f"cannot be read ({exc.strerror})") from exc
    reading = reader.read(raw, path)
    if not any(b.kind in (BlockKind.PARAGRAPH, BlockKind.BULLET) for b in reading.blocks):
        raise DocumentError(path, "has a title but no text to search")
    return Document(
        doc_id=doc_id,
        title=reading.title,
        path=rel_path,
        sha256=hashlib.sha256(raw).hexdigest(),
        text=reading.text,
        blocks=reading.blocks,
    )


__all__ = ["READERS", "SUFFIXES", "Reader", "Reading", "read_document", "reader_for"]
