"""Pure ASGI middleware: request ids, timing, access log, metrics, security headers, body limit.

Written against ASGI directly (not ``BaseHTTPMiddleware``) so streaming and
cancellation behave, and so an unexpected fault still gets a JSON 500 that
carries the request id.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qa.api.errors import error_response
from qa.api.metrics import Metrics

access_log = logging.getLogger("qa.access")
log = logging.getLogger("qa.api")

REQUEST_ID_HEADER = "X-Request-ID"
SERVER_TIMING_HEADER = "Server-Timing"  # W3C: browsers' devtools and `qa bench` read it
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# The page loads its script, styles and data from this origin only; nothing inline.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# FastAPI's /docs page loads Swagger UI from a CDN with an inline script (when the
# swagger-ui-bundle-v2 package is missing; qa.api.docs serves it locally otherwise).
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    "font-src 'self' https://fonts.gstatic.com; worker-src 'self' blob:; frame-ancestors 'none'"
)
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect"})


def request_id(scope: Scope) -> str:
    """The caller's ``X-Request-ID`` when it is short and plain, else a new one."""
    incoming = Headers(scope=scope).get(REQUEST_ID_HEADER, "")
    return incoming if _SANE_ID.match(incoming) else uuid.uuid4().hex


def loggable(text: str) -> str:
    """Escape control characters (a decoded ``%0A`` in a path must not forge a log line)."""
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def route_template(scope: Scope) -> str:
    """``/documents/{doc_id}`` rather than the raw path, so metrics stay bounded."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else "<unmatched>"


class RequestContextMiddleware:
    """One log line and one metrics sample per request; ids and headers on every response.

    ``Server-Timing: app;dur=<ms>`` is the time from the request reaching the app to
    its response starting: what the server spent, without the network or the client.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)
        scope.setdefault("state", {})["request_id"] = rid
        path: str = scope["path"]
        method: str = scope["method"] if scope["method"] in _METHODS else "OTHER"
        csp = DOCS_CSP if path in DOCS_PATHS else PAGE_CSP
        status = 500
        started_response = False
        started = time.perf_counter()

        async def send_with_headers(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                started_response = True
                status = int(message["status"])
                headers = MutableHeaders(scope=message)
                headers[REQUEST_ID_HEADER] = rid
                elapsed_ms = (time.perf_counter() - started) * 1000
                headers[SERVER_TIMING_HEADER] = f"app;dur={elapsed_ms:.3f}"
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Content-Security-Policy", csp)
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Referrer-Policy", "no-referrer")
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            log.exception("unhandled error in %s %s [request %s]", method, path, rid)
            if started_response:
                raise
            response = error_response(
                500, "internal_error", f"internal server error (request id {rid})"
            )
            await response(scope, receive, send_with_headers)
        finally:
            seconds = time.perf_counter() - started
            template = route_template(scope)
            self.metrics.observe(method, template, status, seconds)
            access_log.info(
                "%s %s %s %d %.1fms", rid, scope["method"], loggable(path), status, seconds * 1000
            )


class BodyLimitMiddleware:
    """413 for a body over the limit, by Content-Length or as it streams in.

    Bodies are small by design (questions), so the body is read here in full
    and replayed to the app; a chunked upload cannot slip past the limit.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            if not declared.isdigit():
                await error_response(400, "bad_request", "invalid Content-Length header")(
                    scope, receive, send
                )
                return
            if int(declared) > self.limit:
                await self._too_large(scope, receive, send)
                return
        chunks: list[bytes] = []
        size = 0
        first: Message | None = None
        while True:
            message = await receive()
            if message["type"] != "http.request":
                first = message  # a disconnect: let the app see it
                break
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replay: Message = first or {
            "type": "http.request",
            "body": b"".join(chunks),
            "more_body": False,
        }
        replayed = False

        async def receive_buffered() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return replay
            return await receive()

        await self.app(scope, receive_buffered, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"request body is larger than {self.limit} bytes"
        await error_response(413, "payload_too_large", message, {"Connection": "close"})(
            scope, receive, send
        )
