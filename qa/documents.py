"""Read seed documents and recover their structure.

Offsets are character offsets into the text read as
``open(path, encoding="utf-8", newline="").read()`` (no newline translation),
after dropping one leading UTF-8 byte-order mark if present. Every ``Block``
satisfies ``document.text[block.start:block.end] == block.text``.
"""

from __future__ import annotations

import bisect
import hashlib
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from qa.errors import DocumentError, SeedsError
from qa.types import Block, BlockKind, Document

DOCUMENT_SUFFIXES = (".txt", ".md")
BOM = "\ufeff"

_BULLET = re.compile(r"^[ \t]*(?:[•◦▪‣●○■□–—*+-]|\d{1,3}[.)])[ \t]+")
_MD_HEADING = re.compile(r"^[ \t]{0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$")
_FINAL_PUNCTUATION = '.!?:;,…"”’)]'
_HEADING_MAX_CHARS = 90
_HEADING_MAX_WORDS = 12


def slugify(name: str) -> str:
    """A stable, URL-safe id from a file name (without its suffix)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug or hashlib.sha256(name.encode()).hexdigest()[:12]


def decode_document(raw: bytes, path: Path) -> str:
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


_BREAK = re.compile(r"\r\n|\r|\n")


def line_starts(text: str) -> list[int]:
    """Offsets where each line begins; \r\n, \r and \n each end a line."""
    return [0, *(m.end() for m in _BREAK.finditer(text))]


def line_number(starts: list[int], offset: int) -> int:
    """1-based line holding ``offset``, given ``line_starts(text)``."""
    return bisect.bisect_right(starts, offset)


def _lines(text: str) -> Iterator[_Line]:
    starts = line_starts(text)
    ends = [m.start() for m in _BREAK.finditer(text)] + [len(text)]
    for start, end in zip(starts, ends, strict=True):
        yield _Line(start, end, text[start:end])


def trim_span(text: str, start: int, end: int) -> tuple[int, int]:
    """Shrink ``[start, end)`` past white space at both ends."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


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


def relative_path(path: Path, project_root: Path) -> str:
    """How a document is named in citations: relative to the project when inside it."""
    try:
        return path.resolve().relative_to(project_root.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def load_document(path: Path, project_root: Path) -> Document:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DocumentError(path, f"cannot be read ({exc.strerror})") from exc
    text = decode_document(raw, path)
    title, blocks = parse_blocks(text, markdown=path.suffix.lower() == ".md")
    if not any(b.kind in (BlockKind.PARAGRAPH, BlockKind.BULLET) for b in blocks):
        raise DocumentError(path, "has a title but no text to search")
    return Document(
        doc_id=slugify(path.stem),
        title=title,
        path=relative_path(path, project_root),
        sha256=hashlib.sha256(raw).hexdigest(),
        text=text,
        blocks=tuple(blocks),
    )


def seed_files(seeds_dir: Path) -> list[Path]:
    """The document files in ``seeds_dir``, in a stable order."""
    if not seeds_dir.is_dir():
        raise SeedsError(f"seeds folder {seeds_dir} does not exist")
    files = sorted(
        p for p in seeds_dir.iterdir() if p.is_file() and p.suffix.lower() in DOCUMENT_SUFFIXES
    )
    if not files:
        raise SeedsError(f"seeds folder {seeds_dir} has no .txt or .md documents")
    return files


def load_documents(seeds_dir: Path, project_root: Path | None = None) -> list[Document]:
    """Load every document, or raise before anything is built."""
    root = project_root if project_root is not None else seeds_dir.resolve().parent
    documents = [load_document(path, root) for path in seed_files(seeds_dir)]
    seen: dict[str, str] = {}
    for doc in documents:
        if doc.doc_id in seen:
            raise SeedsError(
                f"documents {seen[doc.doc_id]} and {doc.path} have the same id {doc.doc_id!r}"
            )
        seen[doc.doc_id] = doc.path
    return documents


def seed_fingerprints(
    seeds_dir: Path, project_root: Path | None = None
) -> dict[str, tuple[str, str]]:
    """``doc_id -> (path, sha256)`` for every seed, without parsing: enough to spot staleness."""
    root = project_root if project_root is not None else seeds_dir.resolve().parent
    out: dict[str, tuple[str, str]] = {}
    for path in seed_files(seeds_dir):
        out[slugify(path.stem)] = (
            relative_path(path, root),
            hashlib.sha256(path.read_bytes()).hexdigest(),
        )
    return out
