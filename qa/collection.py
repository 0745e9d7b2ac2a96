"""The Python API: open a project's index and ask it questions, from any program.

``Collection`` is a small façade over ``QAService`` for scripts, notebooks and agent
frameworks: it answers in the same pydantic ``AskResponse`` as ``POST /ask``,
``qa ask --json`` and the MCP ``search`` tool. It starts no server and prints
nothing; a rebuild notice goes to the ``qa`` logger at INFO.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qa.config import Settings
from qa.embedding import Embedder
from qa.schemas import AskResponse
from qa.service import QAService
from qa.store.snapshot import DocumentInfo

log = logging.getLogger("qa")

_FOLDERS = ("seeds_dir", "index_dir", "questions_path", "cache_dir")


def project_settings(project: str | Path, **overrides: Any) -> Settings:
    """Settings (``QA_*`` variables, then ``overrides``) with relative folders under ``project``."""
    root = Path(project).expanduser().resolve()
    base = Settings.from_env(**overrides)
    # root / an absolute path is that path: an absolute folder stays where it is.
    return base.with_overrides(**{name: root / getattr(base, name) for name in _FOLDERS})


class Collection:
    """A project's documents, ready to answer questions with cited passages."""

    def __init__(self, service: QAService) -> None:
        self.service = service

    @classmethod
    def open(
        cls,
        project: str | Path = ".",
        *,
        rebuild: bool = True,
        embedder: Embedder | None = None,
        **settings: Any,
    ) -> Collection:
        """Load the model and the index of ``project`` (building it when missing or stale,
        unless ``rebuild`` is false). ``settings`` override any ``Settings`` field, e.g.
        ``retriever="bm25"``; ``embedder`` reuses an already loaded model."""
        config = project_settings(project, **settings)
        return cls(QAService.open(config, embedder, rebuild=rebuild, notice=log.info))

    def ask(
        self,
        question: str,
        k: int | None = None,
        *,
        documents: Sequence[str] | None = None,
        retriever: str | None = None,
        include_low_confidence: bool = False,
    ) -> AskResponse:
        """The passages that answer ``question``, best first (only from ``documents`` if given).

        Bad input raises ``qa.errors.InvalidQuestionError`` with the API's message.
        """
        answer = self.service.ask(
            question, k, retriever, include_low_confidence, documents=documents
        )
        return AskResponse.of(answer)

    def documents(self) -> list[DocumentInfo]:
        """Every document in the index: ids for ``documents=``, titles, paths and text."""
        return self.service.documents()
