"""The reader seam: a reader per suffix, and every offset pointing into the file's own text."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.config import ChunkSettings
from qa.errors import DocumentError
from qa.indexing.pipeline import make_chunker
from qa.indexing.seeds import load_document, seed_files
from qa.readers import READERS, SUFFIXES, reader_for
from qa.readers.markdown import MarkdownReader
from qa.readers.text import TextReader
from qa.types import BlockKind
from tests.helpers import FakeEmbedder

MARKDOWN = (
    "# Field notes\n\nGlaciers retreat in warm summers. Meltwater feeds rivers.\n\n"
    "## Deltas\n\n- Sediment settles at the coast.\n- Mangroves grow there.\n"
)


def test_readers_are_chosen_by_suffix_whatever_its_case(tmp_path: Path) -> None:
    assert SUFFIXES == (".txt", ".md")
    assert isinstance(reader_for(tmp_path / "a.TXT"), TextReader)
    assert isinstance(reader_for(tmp_path / "b.Md"), MarkdownReader)
    assert set(READERS) == set(SUFFIXES)


def test_an_unsupported_suffix_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DocumentError) as info:
        reader_for(tmp_path / "notes.rst")
    assert str(info.value) == f"document {tmp_path / 'notes.rst'} has an unsupported type " + (
        "(supported: .txt, .md)"
    )


def test_seed_files_follow_the_registry(tmp_path: Path) -> None:
    for name in ("a.txt", "b.md", "c.rst", "d.pdf"):
        (tmp_path / name).write_text("Title\n\nBody.\n", encoding="utf-8")
    assert [p.name for p in seed_files(tmp_path)] == ["a.txt", "b.md"]


def test_the_same_text_reads_differently_as_markdown_and_as_plain_text() -> None:
    raw = MARKDOWN.encode()
    markdown = MarkdownReader().read(raw, Path("notes.md"))
    plain = TextReader().read(raw, Path("notes.txt"))
    assert markdown.title == "Field notes" and plain.title == "# Field notes"
    assert [b.kind for b in markdown.blocks].count(BlockKind.HEADING) == 1
    assert markdown.pages == () and plain.pages == ()
    for reading in (markdown, plain):
        for block in reading.blocks:
            assert reading.text[block.start : block.end] == block.text


@pytest.mark.parametrize("name", ["notes.md", "notes.txt"])
def test_passages_quote_the_file_itself(tmp_path: Path, name: str) -> None:
    """``document.text[start:end] == passage.text``, and the text is the file's own."""
    path = tmp_path / name
    path.write_bytes(MARKDOWN.replace("\n", "\r\n").encode())
    doc = load_document(path, tmp_path)
    with path.open(encoding="utf-8", newline="") as handle:
        assert doc.text == handle.read()
    passages = make_chunker(ChunkSettings(chunk_tokens=8, overlap=1), FakeEmbedder()).chunk(doc)
    assert len(passages) >= 3
    for passage in passages:
        assert doc.text[passage.start : passage.end] == passage.text
