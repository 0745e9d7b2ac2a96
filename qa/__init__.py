"""qa-cite: offline question answering over your documents, with citations.

``from qa import Collection`` is the Python API (see ``qa.collection``); ``QAService``
is the application object behind it. Both are imported on first use, so ``import qa``
stays cheap for the CLI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qa.version import __version__

if TYPE_CHECKING:
    from qa.collection import Collection
    from qa.service import QAService

__all__ = ["Collection", "QAService", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Collection":
        from qa.collection import Collection

        return Collection
    if name == "QAService":
        from qa.service import QAService

        return QAService
    raise AttributeError(f"module 'qa' has no attribute {name!r}")
