"""``POST /admin/reload``: rebuild a stale index and swap it in while serving.

Off unless ``QA_ADMIN_TOKEN`` is set (the route then answers 404 like any unknown
path), and then only for ``Authorization: Bearer <token>``.

The swap is atomic at the level of the whole service: a new ``QAService`` (its own
snapshot, micro-batcher and answer cache) is built and warmed up off the event
loop while the old one keeps answering, then one assignment makes it current. A
request holds the service it started with, so in-flight requests finish on the
old index and never see a mix of the two. The old service's batcher is closed,
and its store released, only after the request timeout has passed, when no
request can still be using it. The new service gets the model already loaded: a
second copy would start a second OpenMP thread team and slow every encode, and
the embedder runs its model and tokenizer on one thread, whichever thread asks.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from typing import Annotated, cast

import anyio
import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from qa.api.errors import ApiError, ErrorResponse, not_ready, responses
from qa.api.state import AppState, stale_reasons, warm_up
from qa.batching import FastAsk
from qa.service import QAService

log = logging.getLogger("qa.api")

RELOAD_PATH = "/admin/reload"

router = APIRouter()
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="AdminToken",
    description="The value of QA_ADMIN_TOKEN. Without it the admin routes do not exist.",
)


class ReloadResponse(BaseModel):
    """What a reload did: nothing when the served index was current."""

    reloaded: bool = Field(description="False when the served index was already current.")
    reasons: list[str] = Field(description="Why the served index was stale before the reload.")
    documents: int
    passages: int
    index_built_at: str
    seconds: float = Field(description="Time to rebuild, load and warm up the new index.")


class Reloader:
    """Serialises reloads and retires replaced services once nothing can use them."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self._lock = anyio.Lock()
        self._retired: dict[QAService, FastAsk | None] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def reload(self) -> ReloadResponse:
        """Rebuild if stale, load and warm up a new service, then swap it in."""
        async with self._lock:
            # The build thread cannot be interrupted: never leave a half-done swap behind.
            with anyio.CancelScope(shield=True):
                result = await self._reload()
            return result

    async def _reload(self) -> ReloadResponse:
        state = self.state
        if state.phase == "loading":
            raise not_ready("the index is still loading; reload when it is ready")
        started = time.perf_counter()
        old = state.service
        reasons = await anyio.to_thread.run_sync(stale_reasons, state.settings, old)
        if old is not None and not reasons:
            return _summary(old, False, [], started)
        if old is None:
            reasons = [state.error or "no index is being served", *reasons]
        log.warning("reloading the index: %s", "; ".join(reasons))
        rebuilding = state.settings.with_overrides(auto_rebuild=True)
        model = old.embedder if old is not None else None
        new = await anyio.to_thread.run_sync(state.factory, rebuilding, model)
        await anyio.to_thread.run_sync(warm_up, new)
        replaced = state.set_ready(new, owned=True)  # the swap: requests now get the new one
        state._stale = None  # readiness must not report the old index as stale
        if old is not None:
            self._retire(old, replaced)
        summary = _summary(new, True, reasons, started)
        log.info(
            "reloaded: %d documents, %d passages in %.1fs",
            summary.documents,
            summary.passages,
            summary.seconds,
        )
        return summary

    def _retire(self, old: QAService, fast: FastAsk | None) -> None:
        """Close the old batcher and store after every request that may hold them has ended."""
        self._retired[old] = fast
        grace = self.state.settings.request_timeout_s + 1.0

        async def close_later() -> None:
            await asyncio.sleep(grace)
            await self._close(old)

        task = asyncio.get_running_loop().create_task(close_later(), name="qa-retire-service")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _close(self, service: QAService) -> None:
        if service in self._retired:
            await self.state.retire(service, self._retired.pop(service))

    async def close(self) -> None:
        """Shutdown: close every retired service now rather than after its grace period."""
        for task in list(self._tasks):
            task.cancel()
        for service in list(self._retired):
            await self._close(service)


def _summary(
    service: QAService, reloaded: bool, reasons: list[str], started: float
) -> ReloadResponse:
    snapshot = service.snapshot
    return ReloadResponse(
        reloaded=reloaded,
        reasons=reasons,
        documents=len(snapshot.documents),
        passages=len(snapshot.passages),
        index_built_at=snapshot.manifest.built_at,
        seconds=round(time.perf_counter() - started, 3),
    )


def get_reloader(request: Request) -> Reloader:
    return cast(Reloader, request.app.state.reloader)


def authorize(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """404 when no admin token is configured; 401 without a bearer token; 403 for a wrong one."""
    reloader = get_reloader(request)
    expected = reloader.state.settings.admin_token
    if not expected:
        raise ApiError(404, "not_found", f"nothing at {request.method} {request.url.path}")
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None or not credentials.credentials:
        raise ApiError(
            401, "unauthorized", "admin token required (Authorization: Bearer)", challenge
        )
    if not hmac.compare_digest(credentials.credentials.encode(), expected.encode()):
        raise ApiError(403, "forbidden", "wrong admin token", challenge)


_AUTH_RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse, "description": "No bearer token."},
    403: {"model": ErrorResponse, "description": "Wrong bearer token."},
}


@router.post(
    RELOAD_PATH,
    response_model=ReloadResponse,
    tags=["operations"],
    summary="Rebuild a stale index and swap it in without dropping requests",
    responses={**responses(404, 413, 503), **_AUTH_RESPONSES},
    dependencies=[Depends(authorize)],
)
async def reload_index(reloader: Annotated[Reloader, Depends(get_reloader)]) -> ReloadResponse:
    """Only when ``QA_ADMIN_TOKEN`` is set (otherwise 404), with it as a bearer token.

    When seeds or settings changed (see ``/readyz``), embeds what changed, loads the
    new index, warms it up and swaps it in atomically; requests in flight finish on
    the old one. A current index is left alone (``reloaded: false``). If the rebuild
    fails, the old index keeps being served and the error is a 503.
    """
    return await reloader.reload()
