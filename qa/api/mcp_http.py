"""``/mcp`` on ``qa serve``: the MCP server over streamable HTTP, when ``QA_MCP=true``.

The tools ask through the same cache and micro-batcher as ``/ask``, so ``search``
and ``POST /ask`` give the same answer. The transport is stateless (each POST is
answered on its own, as JSON), so any replica behind a load balancer can answer
any request. With ``QA_ADMIN_TOKEN`` set, ``/mcp`` requires ``Authorization:
Bearer <token>``, since it reads the whole collection.
"""

from __future__ import annotations

import asyncio
import hmac

from fastapi import FastAPI
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.datastructures import Headers
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from qa.api.errors import ApiError, error_response
from qa.api.state import AppState
from qa.mcp import NotReadyError, build_server
from qa.service import QAService
from qa.types import Answer

MCP_PATH = "/mcp"


class StateSource:
    """The app's service (not ready until the lifespan has loaded it), asked like ``/ask``."""

    def __init__(self, state: AppState) -> None:
        self.state = state

    async def service(self) -> QAService:
        try:
            return self.state.require_service()
        except ApiError as exc:
            raise NotReadyError(exc.message) from None

    async def ask(
        self, service: QAService, question: str, k: int, documents: list[str] | None
    ) -> Answer:
        """Through the served service's batcher and cache, as ``/ask`` answers; after a
        reload that is the new service, which the next lookup would return anyway."""
        async with asyncio.timeout(self.state.settings.request_timeout_s):
            return await self.state.fast_ask().ask(question, k, None, False, documents)


class BearerGuard:
    """Lets a request through only with ``Authorization: Bearer <token>``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        given = Headers(scope=scope).get("authorization", "")
        scheme, _, credentials = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            credentials.strip().encode(), self.token
        ):
            response = error_response(
                401,
                "unauthorized",
                "MCP needs Authorization: Bearer <QA_ADMIN_TOKEN>",
                {"WWW-Authenticate": "Bearer"},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def install(app: FastAPI, state: AppState) -> StreamableHTTPSessionManager:
    """Add the ``/mcp`` route; the caller runs the returned manager in its lifespan."""
    settings = state.settings
    server = build_server(StateSource(state), settings)
    starlette = server.streamable_http_app(
        streamable_http_path=MCP_PATH, stateless_http=True, json_response=True, host=settings.host
    )
    route = starlette.routes[0]
    assert isinstance(route, Route) and route.path == MCP_PATH
    endpoint: ASGIApp = route.app
    if settings.admin_token:
        endpoint = BearerGuard(endpoint, settings.admin_token)
    app.router.routes.append(Route(MCP_PATH, endpoint=endpoint, include_in_schema=False))
    return server.session_manager
