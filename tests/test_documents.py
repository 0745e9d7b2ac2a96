"""Reading seeds: structure, offsets, and clear errors for unusable files."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.errors import DocumentError, SeedsError
from qa.indexing.seeds import load_document, load_documents, scan_seeds, slugify
from qa.types import BlockKind
from tests.helpers import ESSAY, SEEDS

ESSAY_HEADINGS = [
    "Executive summary",
    "Introduction",
    "The drivers of cooperation",
    "Security and geopolitics",
    "The primacy of interests",
    "Sino-Russian partnership and the international system",
    "The shock of events",
    "The war in Ukraine",
    "The Trump effect",
    "Looking ahead",
    "Implications for Western policymaking",
]


def test_essay_structure() -> None:
    doc = load_document(ESSAY, SEEDS.parent)
    assert doc.doc_id == "china-russia-relations-in-the-age-of-trump"
    assert doc.title == "Convergence and divergence: China-Russia relations in the age of Trump"
    assert doc.path == "seeds/china-russia-relations-in-the-age-of-trump.txt"
    headings = [b.text for b in doc.blocks if b.kind is BlockKind.HEADING]
    assert headings == ESSAY_HEADINGS
    bullets = [b for b in doc.blocks if b.kind is BlockKind.BULLET]
    assert len(bullets) == 5
    assert {b.section for b in bullets} == {"Executive summary"}
    assert [b.paragraph for b in bullets] == [1, 2, 3, 4, 5]
    assert bullets[0].text.startswith("• The Sino-Russian partnership is based on")
    for block in doc.blocks:
        assert doc.text[block.start : block.end] == block.text
    intro = [b for b in doc.blocks if b.section == "Introduction" and b.paragraph]
    assert [b.paragraph for b in intro] == list(range(1, len(intro) + 1))
    assert intro[0].text.startswith("In a disorderly world of shifting loyalties")


def test_offsets_match_reading_without_newline_translation(tmp_path: Path) -> None:
    path = tmp_path / "crlf.txt"
    path.write_bytes(b"Title\r\n\r\nFirst paragraph here.\r\n\r\nSecond one.\r\n")
    doc = load_document(path, tmp_path)
    with path.open(encoding="utf-8", newline="") as handle:
        assert doc.text == handle.read()
    paragraphs = [b for b in doc.blocks if b.kind is BlockKind.PARAGRAPH]
    assert [(b.start, b.end) for b in paragraphs] == [(9, 30), (34, 45)]
    assert doc.text[34:45] == "Second one."


def test_byte_order_mark_is_dropped_before_offsets(tmp_path: Path) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffTitle\n\nBody text.\n".encode())
    doc = load_document(path, tmp_path)
    assert doc.text == "Title\n\nBody text.\n"
    assert doc.title == "Title"
    body = next(b for b in doc.blocks if b.kind is BlockKind.PARAGRAPH)
    assert (body.start, body.end) == (7, 17)


def test_markdown_headings_and_bullets(tmp_path: Path) -> None:
    path = tmp_path / "Notes On Things.md"
    path.write_text(
        "# The title\n\nIntro text.\n\n## Part one\n\n- first item\n- second item\n\n"
        "Closing paragraph\nwrapped here.\n",
        encoding="utf-8",
    )
    doc = load_document(path, tmp_path)
    assert doc.doc_id == "notes-on-things"
    assert doc.title == "The title"
    kinds = [(b.kind.value, b.section, b.paragraph, b.text) for b in doc.blocks]
    assert kinds == [
        ("title", "The title", 0, "The title"),
        ("paragraph", "The title", 1, "Intro text."),
        ("heading", "Part one", 0, "Part one"),
        ("bullet", "Part one", 1, "- first item"),
        ("bullet", "Part one", 2, "- second item"),
        ("paragraph", "Part one", 3, "Closing paragraph\nwrapped here."),
    ]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"Title\n\nBad byte \xff here\n", "is not valid UTF-8 (byte 16)"),
        (b"", "is empty"),
        (b"  \n\n\t\n", "is empty"),
        (b"\xef\xbb\xbf", "is empty"),
        (b"Only a title\n", "has a title but no text to search"),
    ],
)
def test_unusable_documents_name_the_file(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "broken.txt"
    path.write_bytes(content)
    with pytest.raises(DocumentError) as info:
        load_document(path, tmp_path)
    assert str(info.value) == f"document {path} {problem}"


def test_missing_and_empty_seed_folders(tmp_path: Path) -> None:
    with pytest.raises(SeedsError, match="does not exist"):
        load_documents(tmp_path / "nope")
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "ignored.pdf").write_bytes(b"%PDF")
    with pytest.raises(SeedsError, match=r"has no \.txt or \.md documents"):
        load_documents(tmp_path / "seeds")


def test_one_bad_file_fails_the_whole_load(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "good.txt").write_text("Title\n\nText.\n", encoding="utf-8")
    (seeds / "bad.txt").write_bytes(b"\xff\xfe")
    with pytest.raises(DocumentError, match=r"bad\.txt is not valid UTF-8"):
        load_documents(seeds)


def test_duplicate_ids_are_rejected(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "My Doc.txt").write_text("A\n\nText.\n", encoding="utf-8")
    (seeds / "my-doc.md").write_text("# B\n\nText.\n", encoding="utf-8")
    with pytest.raises(SeedsError, match=r"have the same id 'my-doc'"):
        load_documents(seeds)


def test_slug_is_stable_and_url_safe() -> None:
    assert slugify("Café Society — 2024 Report") == "cafe-society-2024-report"
    assert slugify("___") == slugify("___")
    assert slugify("___") != ""


def test_seed_scan_matches_full_load() -> None:
    doc = load_document(ESSAY, SEEDS.parent)
    [seed] = scan_seeds(SEEDS)
    assert (seed.doc_id, seed.rel_path, seed.sha256) == (doc.doc_id, doc.path, doc.sha256)
