"""The app factory: ``create_app(settings)`` wires routes, errors, middleware and lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from qa.api import admin, docs, errors, mcp_http, routes
from qa.api.metrics import Metrics
from qa.api.middleware import REQUEST_ID_HEADER, BodyLimitMiddleware, RequestContextMiddleware
from qa.api.state import AppState, ServiceFactory, open_service
from qa.config import Settings
from qa.service import QAService
from qa.version import __version__

DESCRIPTION = """\
Answers questions from the documents in `seeds/`, offline, citing each passage:
document, section, paragraph, character span and a highlighted quote.

Every error answers `{"error": {"code": str, "message": str}}`.
"""

TAGS = [
    {"name": "questions", "description": "Ask and get cited passages."},
    {"name": "collection", "description": "Passages and documents, to verify citations."},
    {"name": "operations", "description": "Liveness, readiness and metrics."},
]


def create_app(
    settings: Settings | None = None,
    *,
    service: QAService | None = None,
    service_factory: ServiceFactory | None = None,
) -> FastAPI:
    """Build the app. Pass ``service`` to serve an already-loaded one (tests do).

    Otherwise the lifespan loads it with ``service_factory`` (default: the model and
    index from ``settings``, rebuilding a stale index when ``auto_rebuild`` is on)
    in the background, and ``/readyz`` answers 503 until it is warm.
    """
    settings = settings or Settings()
    state = AppState(settings, service_factory or open_service, Metrics())
    if service is not None:
        state.set_ready(service)

    reloader = admin.Reloader(state)
    swagger_ui = docs.swagger_ui_dir()  # served locally when installed, else from a CDN
    sessions: list[StreamableHTTPSessionManager] = []
    app = FastAPI(
        title="qa-cite",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=_lifespan(state, reloader, sessions),
        docs_url=None if swagger_ui else docs.DOCS_PATH,
        redoc_url=None,  # ReDoc only loads from a CDN (no package ships it); /docs is offline
    )
    app.state.qa = state
    app.state.reloader = reloader
    errors.install(app)
    app.include_router(routes.router)
    app.include_router(admin.router)
    app.mount("/static", StaticFiles(directory=routes.STATIC_DIR), name="static")
    if swagger_ui:
        docs.install(app, swagger_ui)
    if settings.mcp:
        sessions.append(mcp_http.install(app, state))

    # Added innermost first: the request context wraps everything, so even a 413 or a
    # CORS preflight is logged, counted and carries its request id.
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", REQUEST_ID_HEADER],
            expose_headers=[REQUEST_ID_HEADER],
            max_age=600,
        )
    app.add_middleware(RequestContextMiddleware, metrics=state.metrics)
    app.openapi = _openapi(app, settings)  # type: ignore[method-assign]
    return app


def _lifespan(
    state: AppState, reloader: admin.Reloader, sessions: list[StreamableHTTPSessionManager]
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack, anyio.create_task_group() as group:
            for manager in sessions:  # /mcp's session manager, when QA_MCP is on
                await stack.enter_async_context(manager.run())
            if state.service is None:
                group.start_soon(state.load)
            yield
            group.cancel_scope.cancel()
        await reloader.close()
        await state.close()

    return lifespan


def _openapi(app: FastAPI, settings: Settings) -> Callable[[], dict[str, Any]]:
    """The generated schema, with the configured limits written in."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            _set_limits(schema, settings)
            app.openapi_schema = schema
        return app.openapi_schema

    return build


def _set_limits(schema: dict[str, Any], settings: Settings) -> None:
    body = schema["components"]["schemas"]["AskRequest"]["properties"]
    _limit(body["question"], "string", "maxLength", settings.max_question_chars)
    _limit(body["k"], "integer", "maximum", settings.max_k)
    for param in schema["paths"]["/ask"]["get"]["parameters"]:
        if param["name"] == "q":
            _limit(param["schema"], "string", "maxLength", settings.max_question_chars)
        elif param["name"] == "k":
            _limit(param["schema"], "integer", "maximum", settings.max_k)


def _limit(node: dict[str, Any], kind: str, key: str, value: int) -> None:
    if node.get("type") == kind:
        node[key] = value
    for option in node.get("anyOf", []):
        _limit(option, kind, key, value)
