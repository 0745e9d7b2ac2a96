"""The one place where failures become HTTP responses with one JSON shape.

Every error body is ``{"error": {"code": str, "message": str}}`` and never holds
a stack trace: domain errors, FastAPI's validation errors, unknown routes, bad
methods, oversized bodies and unexpected faults all go through here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match, Route

from qa.errors import InvalidQuestionError, InvalidSpanError, NotFoundError, QAError

log = logging.getLogger("qa.api")

RETRY_AFTER_S = 5


class ErrorDetail(BaseModel):
    code: str = Field(examples=["invalid_request"], description="Stable, machine-readable.")
    message: str = Field(examples=["question: must not be empty"], description="For people.")


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


class ApiError(Exception):
    """An error the API answers on purpose, with its status, code and headers."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def not_ready(message: str) -> ApiError:
    """503 with Retry-After: the index is still loading, or failed to load."""
    return ApiError(503, "not_ready", message, {"Retry-After": str(RETRY_AFTER_S)})


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = ErrorResponse(error=ErrorDetail(code=code, message=message))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def invalid(field: str, message: str, where: str = "body") -> RequestValidationError:
    """A validation error raised by a route, so it reads like pydantic's own."""
    return RequestValidationError(
        [{"type": "value_error", "loc": (where, field), "msg": message, "input": None}]
    )


# -- mapping ----------------------------------------------------------------------

_HTTP_CODES = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    503: "not_ready",
}

# Messages pydantic writes in its own words, replaced by shorter ones.
_TYPE_MESSAGES = {
    "missing": "field required",
    "extra_forbidden": "unknown field",
}


def describe(errors: Sequence[Any]) -> str:
    """``field: problem`` for each validation error, joined with ``; ``."""
    parts: list[str] = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path")]
        kind = str(error.get("type", ""))
        if kind == "json_invalid":
            reason = (error.get("ctx") or {}).get("error", "")
            parts.append(f"malformed JSON body: {reason}".rstrip(": "))
            continue
        message = _TYPE_MESSAGES.get(kind) or str(error.get("msg", "invalid value"))
        message = message.removeprefix("Value error, ")
        message = message[:1].lower() + message[1:]
        field = ".".join(loc) or "body"
        parts.append(f"{field}: {message}")
    return "; ".join(dict.fromkeys(parts)) or "invalid request"


def _qa_error_status(exc: QAError) -> tuple[int, str]:
    if isinstance(exc, InvalidQuestionError):
        return 422, "invalid_question"
    if isinstance(exc, InvalidSpanError):
        return 422, "invalid_span"
    if isinstance(exc, NotFoundError):
        return 404, "not_found"
    # Everything else is about the index, the seeds or the model: the service cannot answer.
    return 503, "index_unavailable"


async def _on_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers)


async def _on_qa_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, QAError)
    status, code = _qa_error_status(exc)
    if status >= 500:
        log.error("%s %s: %s", request.method, request.url.path, exc)
        return error_response(status, code, str(exc), {"Retry-After": str(RETRY_AFTER_S)})
    return error_response(status, code, str(exc))


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, "malformed_json", describe(errors))
    return error_response(422, "invalid_request", describe(errors))


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    headers = dict(exc.headers or {})
    if exc.status_code == 400:
        # FastAPI's answer to a body it cannot read, such as JSON that is not UTF-8.
        code, message = "malformed_json", f"malformed JSON body: {str(exc.detail).lower()}"
    elif exc.status_code == 404:
        message = f"nothing at {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
        headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
    else:
        message = str(exc.detail)
    return error_response(exc.status_code, code, message, headers)


def _allowed_methods(request: Request) -> str:
    """Every method the path accepts, not just those of the first route that matched it."""
    methods: set[str] = set()
    for route in _leaf_routes(request.app.router.routes):
        if route.matches(request.scope)[0] is Match.PARTIAL:
            methods |= route.methods or set()
    return ", ".join(sorted(methods))


def _leaf_routes(routes: Sequence[BaseRoute]) -> Iterator[Route]:
    for route in routes:
        if isinstance(route, Route):
            yield route
        else:  # recent FastAPI keeps an included router as one branch
            inner = getattr(getattr(route, "original_router", None), "routes", None)
            if isinstance(inner, list):
                yield from _leaf_routes(inner)


async def _on_timeout(request: Request, exc: Exception) -> JSONResponse:
    log.warning("%s %s timed out", request.method, request.url.path)
    return error_response(504, "timeout", "the request took too long; try a shorter question")


def install(app: FastAPI) -> None:
    """Register every handler; unexpected faults are caught by the request middleware."""
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(QAError, _on_qa_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(TimeoutError, _on_timeout)


# -- OpenAPI ----------------------------------------------------------------------

_DESCRIPTIONS = {
    400: "Malformed JSON body.",
    404: "Unknown id.",
    413: "Request body too large.",
    422: "Invalid input: the message names the field.",
    500: "Unexpected server fault (logged with its trace).",
    503: "The index is not loaded yet (see Retry-After), or cannot be served.",
    504: "The request took longer than the configured timeout.",
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for the listed error statuses, plus 500 everywhere."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in sorted({*statuses, 500}):
        entry: dict[str, Any] = {"model": ErrorResponse, "description": _DESCRIPTIONS[status]}
        if status == 503:
            entry["headers"] = {
                "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}
            }
        out[status] = entry
    return out
