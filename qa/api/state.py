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
from qa.batching import FastAsk
from qa.config import Settings
from qa.embedding import Embedder
from qa.errors import QAError
from qa.indexing import check_index, published_manifest
from qa.service import QAService

log = logging.getLogger("qa.api")

# Settings, and the model already loaded (None on the first load): a reload passes the
# serving model on, since a second copy's OpenMP threads slow every encode.
ServiceFactory = Callable[[Settings, Embedder | None], QAService]
Phase = Literal["loading", "ready", "failed"]
T = TypeVar("T")

WARM_UP_QUESTION = "What is this collection about?"
STALE_CACHE_S = 1.0


def open_service(settings: Settings, embedder: Embedder | None = None) -> QAService:
    """The default factory: load the index (and the model unless given), rebuilding as
    `qa ask` does."""
    return QAService.open(settings, embedder, notice=log.warning)


def warm_up(service: QAService) -> None:
    """One real query, so the first user does not pay for lazy initialisation."""
    service.ask(WARM_UP_QUESTION, k=1)


@dataclass(slots=True)
class _Staleness:
    checked_at: float
    reasons: list[str]


class AppState:
    """The service (``None`` until ready), its micro-batcher, and the bookkeeping around them.

    The state owns what the app made: the ``FastAsk`` (batcher, search pool, answer
    cache) of the current service, and every service its factory loaded, which it
    closes when they are replaced or at shutdown. A service handed to ``create_app``
    stays its caller's to close.
    """

    def __init__(self, settings: Settings, factory: ServiceFactory, metrics: Metrics) -> None:
        self.settings = settings
        self.factory = factory
        self.metrics = metrics
        self.service: QAService | None = None
        self.phase: Phase = "loading"
        self.error: str | None = None
        self._fast: FastAsk | None = None
        self._owned: set[QAService] = set()  # loaded by the factory: closed by the app
        self._stale: _Staleness | None = None

    # -- lifecycle ----------------------------------------------------------------

    def set_ready(self, service: QAService, owned: bool = False) -> FastAsk | None:
        """Serve ``service`` from now on; returns the replaced service's ``FastAsk``."""
        replaced = self._fast
        self.service = service
        self._fast = None  # the next question starts the new service's batcher
        if owned:
            self._owned.add(service)
        self.phase = "ready"
        self.error = None
        self.metrics.ready.set(1)
        return replaced

    def fast_ask(self) -> FastAsk:
        """The current service's batcher and cache, started on the first question.

        Read from the event loop only, so a request gets a service and its own batcher,
        never the batcher of another service.
        """
        service = self.require_service()
        if self._fast is None:
            self._fast = FastAsk(service)
        return self._fast

    async def retire(self, service: QAService, fast: FastAsk | None) -> None:
        """Stop ``service``'s batcher and release its store, if the app loaded it."""
        if fast is not None:
            await fast.close()
        if service in self._owned:
            self._owned.discard(service)
            await anyio.to_thread.run_sync(service.close)

    async def close(self) -> None:
        """Shutdown: stop the batcher and release the service being served."""
        fast, self._fast = self._fast, None
        if self.service is not None:
            await self.retire(self.service, fast)

    async def load(self) -> None:
        """Build the service off the event loop, warm it up, then report ready."""
        started = time.perf_counter()
        log.info("loading the model and index")
        try:
            service = await anyio.to_thread.run_sync(
                self.factory, self.settings, None, abandon_on_cancel=True
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
        self.set_ready(service, owned=True)
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
