"""What the app holds between requests: the service once loaded, and its readiness.

Loading runs in a background task started by the lifespan, so the server answers
``/healthz`` (and ``/readyz`` with 503) while the model and index load.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

import anyio
import anyio.to_thread

from qa.api.errors import not_ready
from qa.api.metrics import Metrics
from qa.config import Settings
from qa.errors import QAError
from qa.indexing import check_index, published_manifest
from qa.service import QAService

log = logging.getLogger("qa.api")

ServiceFactory = Callable[[Settings], QAService]
Phase = Literal["loading", "ready", "failed"]
T = TypeVar("T")

WARM_UP_QUESTION = "What is this collection about?"
STALE_CACHE_S = 1.0


def open_service(settings: Settings) -> QAService:
    """The default factory: load the model and index, rebuilding as `qa ask` does."""
    return QAService.open(settings, notice=log.warning)


def warm_up(service: QAService) -> None:
    """One real query, so the first user does not pay for lazy initialisation."""
    service.ask(WARM_UP_QUESTION, k=1)


@dataclass(slots=True)
class _Staleness:
    checked_at: float
    reasons: list[str]


class AppState:
    """The service (``None`` until ready) and the bookkeeping around it."""

    def __init__(self, settings: Settings, factory: ServiceFactory, metrics: Metrics) -> None:
        self.settings = settings
        self.factory = factory
        self.metrics = metrics
        self.service: QAService | None = None
        self.phase: Phase = "loading"
        self.error: str | None = None
        self._stale: _Staleness | None = None

    # -- lifecycle ----------------------------------------------------------------

    def set_ready(self, service: QAService) -> None:
        self.service = service
        self.phase = "ready"
        self.error = None
        self.metrics.ready.set(1)

    async def load(self) -> None:
        """Build the service off the event loop, warm it up, then report ready."""
        started = time.perf_counter()
        log.info("loading the model and index")
        try:
            service = await anyio.to_thread.run_sync(
                self.factory, self.settings, abandon_on_cancel=True
            )
            await anyio.to_thread.run_sync(warm_up, service, abandon_on_cancel=True)
        except QAError as exc:
            self._fail(str(exc))
            log.error("cannot load the index: %s", exc)
            return
        except Exception:
            self._fail("unexpected error while loading the index; see the server log")
            log.exception("unexpected error while loading the index")
            return
        self.set_ready(service)
        snapshot = service.snapshot
        log.info(
            "ready: %d documents, %d passages in %.1fs",
            len(snapshot.documents),
            len(snapshot.passages),
            time.perf_counter() - started,
        )

    def _fail(self, message: str) -> None:
        self.phase = "failed"
        self.error = message

    def require_service(self) -> QAService:
        """The loaded service, or a 503 with Retry-After."""
        if self.service is not None:
            return self.service
        if self.phase == "failed":
            raise not_ready(f"the index could not be loaded: {self.error}")
        raise not_ready("the index and model are still loading; retry shortly")

    # -- work off the event loop ----------------------------------------------------

    async def run(self, func: Callable[..., T], *args: object) -> T:
        """Run blocking core work in a thread, bounded by the request timeout."""
        with anyio.fail_after(self.settings.request_timeout_s):
            return await anyio.to_thread.run_sync(func, *args, abandon_on_cancel=True)

    # -- staleness ------------------------------------------------------------------

    async def stale_reasons(self) -> list[str]:
        """Why the served index is out of date; hashes only the seed files, cached 1 s."""
        now = time.monotonic()
        cached = self._stale
        if cached is not None and now - cached.checked_at < STALE_CACHE_S:
            return cached.reasons
        reasons = await anyio.to_thread.run_sync(stale_reasons, self.settings, self.service)
        self._stale = _Staleness(now, reasons)
        return reasons


def stale_reasons(settings: Settings, service: QAService | None) -> list[str]:
    """``check_index`` on the published index, plus whether the served one is older."""
    try:
        reasons = check_index(settings, service.embedder if service else None)
        if service is not None and not reasons:
            published = published_manifest(settings)  # any backend (FAISS folder, Milvus)
            if published.built_at != service.snapshot.manifest.built_at:
                reasons.append("a newer index was published than the one being served")
    except (QAError, OSError) as exc:
        return [str(exc)]
    return reasons
