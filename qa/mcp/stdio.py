"""``qa mcp``: the MCP server over stdio, as desktop assistants launch it.

The model and index load on a background thread once the transport is up, so
the assistant's ``initialize`` is answered at once; a tool called meanwhile
waits for the load (up to the request timeout) and then gets a "not ready"
error saying why. Nothing but protocol goes to stdout: the SDK points file
descriptor 1 at stderr while it serves, and logs go to stderr.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.to_thread

from qa.config import Settings
from qa.mcp.server import NotReadyError, build_server
from qa.service import QAService
from qa.types import Answer

log = logging.getLogger("qa.mcp")

Factory = Callable[[Settings], QAService]


def open_service(settings: Settings) -> QAService:
    """Load the model and index, rebuilding a stale index as `qa ask` does."""
    return QAService.open(settings, notice=log.warning)


class LoadingSource:
    """The service, loaded once on a daemon thread; asks run one at a time off the loop."""

    def __init__(self, settings: Settings, factory: Factory = open_service) -> None:
        self.settings = settings
        self.factory = factory
        self._done = threading.Event()
        self._service: QAService | None = None
        self._error: str | None = None
        self._limiter = anyio.CapacityLimiter(1)  # one model call at a time

    def start(self) -> None:
        threading.Thread(target=self._load, name="qa-mcp-load", daemon=True).start()

    def _load(self) -> None:
        try:
            self._service = self.factory(self.settings)
            log.info("ready: %d documents", len(self._service.snapshot.documents))
        except Exception as exc:  # reported to every tool call; the server stays up
            self._error = str(exc) or exc.__class__.__name__
            log.error("cannot load the index: %s", self._error)
        finally:
            self._done.set()

    async def service(self) -> QAService:
        if not self._done.is_set():
            await anyio.to_thread.run_sync(self._done.wait, self.settings.request_timeout_s)
        if self._service is not None:
            return self._service
        if self._error is not None:
            raise NotReadyError(f"the index could not be loaded: {self._error}")
        raise NotReadyError("the index and model are still loading; retry shortly")

    async def ask(
        self, service: QAService, question: str, k: int, documents: list[str] | None
    ) -> Answer:
        def run() -> Answer:
            return service.ask(question, k, documents=documents)

        return await anyio.to_thread.run_sync(run, limiter=self._limiter)


def run_stdio(settings: Settings, factory: Factory = open_service) -> None:
    """Serve MCP on stdin/stdout until the client closes them."""
    source = LoadingSource(settings, factory)

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        source.start()  # only now: stdout is the transport's from here on
        yield

    server = build_server(source, settings, lifespan=lifespan)
    anyio.run(server.run_stdio_async)
