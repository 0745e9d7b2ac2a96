"""The seeds folder, scanned once: each file's id, path and hash, and a check for twins.

Scanning reads bytes but parses nothing, so a staleness check is cheap; a
``SeedFile`` is read into a ``Document`` (through the reader for its suffix)
only when it is embedded.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from qa.errors import SeedsError
from qa.readers import SUFFIXES, read_document
from qa.types import Document


def slugify(name: str) -> str:
    """A stable, URL-safe id from a file name (without its suffix)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug or hashlib.sha256(name.encode()).hexdigest()[:12]


def relative_path(path: Path, project_root: Path) -> str:
    """How a document is named in citations: relative to the project when inside it."""
    try:
        return path.resolve().relative_to(project_root.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


@dataclass(frozen=True, slots=True)
class SeedFile:
    """One seed, identified but not yet parsed."""

    doc_id: str
    path: Path
    rel_path: str
    sha256: str

    def read(self) -> Document:
        return read_document(self.path, self.doc_id, self.rel_path)


def seed_files(seeds_dir: Path) -> list[Path]:
    """The document files in ``seeds_dir``, in a stable order."""
    if not seeds_dir.is_dir():
        raise SeedsError(f"seeds folder {seeds_dir} does not exist")
    files = sorted(p for p in seeds_dir.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not files:
        names = " or ".join(SUFFIXES)
        raise SeedsError(f"seeds folder {seeds_dir} has no {names} documents")
    return files


def scan_seeds(seeds_dir: Path, project_root: Path | None = None) -> list[SeedFile]:
    """Every seed file with its id and hash, in stable order; two files with one id fail."""
    root = project_root if project_root is not None else seeds_dir.resolve().parent
    seen: dict[str, str] = {}
    out = []
    for path in seed_files(seeds_dir):
        doc_id = slugify(path.stem)
        rel = relative_path(path, root)
        if doc_id in seen:
            raise SeedsError(f"documents {seen[doc_id]} and {rel} have the same id {doc_id!r}")
        seen[doc_id] = rel
        out.append(SeedFile(doc_id, path, rel, hashlib.sha256(path.read_bytes()).hexdigest()))
    return out


def load_document(path: Path, project_root: Path) -> Document:
    """One file read as a seed (its id from its name, its path relative to the project)."""
    return read_document(path, slugify(path.stem), relative_path(path, project_root))


def load_documents(seeds_dir: Path, project_root: Path | None = None) -> list[Document]:
    """Every seed read, or an error before anything is built."""
    return [seed.read() for seed in scan_seeds(seeds_dir, project_root)]
