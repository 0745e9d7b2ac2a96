"""Domain errors. The edges map each to a message and an exit or status code."""

from __future__ import annotations

from pathlib import Path


class QAError(Exception):
    """Base class for every error the user can act on."""


class SeedsError(QAError):
    """The seeds folder is missing, empty or inconsistent."""


class DocumentError(SeedsError):
    """One seed document cannot be used."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        super().__init__(f"document {path} {problem}")


class InvalidQuestionError(QAError):
    """A question or its parameters are out of bounds."""


class InvalidSpanError(QAError):
    """A span of a document outside ``0 <= start <= end <= length``."""


class IndexMissingError(QAError):
    """No index has been built yet."""


class StaleIndexError(QAError):
    """The index no longer matches the seeds or settings, and rebuilding is off."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__("index is stale: " + "; ".join(reasons) + " (run `qa index`)")


class CorruptIndexError(QAError):
    """An index file fails its checksum or cannot be parsed."""


class IndexLockedError(QAError):
    """Another process is building the index."""


class VectorStoreUnavailableError(QAError):
    """The configured vector store (e.g. a Milvus server or Lite file) cannot be opened."""


class NotFoundError(QAError):
    """An unknown passage or document id."""


class ModelLoadError(QAError):
    """The embedding model cannot be loaded offline."""


class SettingsError(QAError):
    """A setting (a ``QA_*`` variable or a flag on top of it) has a value it cannot take."""
