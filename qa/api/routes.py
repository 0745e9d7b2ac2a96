"""Thin routes: validate, call ``QAService`` off the event loop, shape the answer.

Domain errors are not caught here; ``qa.api.errors`` maps them to status codes.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, cast

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, Response

from qa.api.errors import RETRY_AFTER_S, invalid, responses
from qa.api.models import (
    DOCUMENTS_HELP,
    NOT_BLANK,
    AskRequest,
    DocumentDetail,
    DocumentList,
    HealthResponse,
    Question,
    ReadyResponse,
    SpanOut,
)
from qa.api.state import AppState
from qa.batching import FastAsk
from qa.config import RetrieverName
from qa.errors import InvalidQuestionError
from qa.schemas import AskResponse, DocumentOut, PassageResponse
from qa.service import QAService

STATIC_DIR = Path(__file__).resolve().parent / "static"
METRICS_MEDIA_TYPE = "text/plain; version=0.0.4; charset=utf-8"

router = APIRouter()


# Dependencies are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency
# on a worker thread, and two thread hops per question showed up in the profile.
async def get_state(request: Request) -> AppState:
    return cast(AppState, request.app.state.qa)


StateDep = Annotated[AppState, Depends(get_state)]


async def get_service(state: StateDep) -> QAService:
    """The loaded service; 503 with Retry-After until the lifespan has loaded it."""
    return state.require_service()


ServiceDep = Annotated[QAService, Depends(get_service)]


async def get_fast_ask(state: StateDep) -> FastAsk:
    """The current service's batcher, owned by the app state; 503 until it is loaded."""
    return state.fast_ask()


FastAskDep = Annotated[FastAsk, Depends(get_fast_ask)]


# -- questions ------------------------------------------------------------------------


async def _answer(
    state: StateDep,
    fast: FastAsk,
    question: str,
    k: int | None,
    retriever: RetrieverName | None,
    include_low_confidence: bool,
    documents: list[str] | None,
    where: str,
    field: str,
) -> Response:
    """The answer as JSON bytes, serialised once.

    Returning a ``Response`` skips FastAPI's second validation of the return value
    against ``response_model``, which stays declared for the OpenAPI schema.
    """
    settings = state.settings
    if len(question) > settings.max_question_chars:
        raise invalid(
            field,
            f"must be at most {settings.max_question_chars} characters, got {len(question)}",
            where,
        )
    if k is not None and not 1 <= k <= settings.max_k:
        raise invalid("k", f"must be between 1 and {settings.max_k}, got {k}", where)
    try:
        fast.service.scope(documents)
    except InvalidQuestionError as exc:
        raise invalid("documents", str(exc), where) from None
    async with asyncio.timeout(settings.request_timeout_s):  # cache, then batched encoding
        answer = await fast.ask(question, k, retriever, include_low_confidence, documents)
    state.metrics.questions.labels("true" if answer.answered else "false").inc()
    state.metrics.passages.inc(len(answer.hits))
    return Response(AskResponse.of(answer).model_dump_json(), media_type="application/json")


@router.post(
    "/ask",
    response_model=AskResponse,
    tags=["questions"],
    summary="Answer a question with cited passages",
    responses=responses(400, 413, 422, 503, 504),
)
async def ask_post(body: AskRequest, state: StateDep, fast: FastAskDep) -> Response:
    """The passages that answer the question, best first, each with its citation and quote.

    ``answered`` is false when no passage is similar enough: the service abstains and
    returns no passages unless ``include_low_confidence`` is set.
    """
    return await _answer(
        state,
        fast,
        body.question,
        body.k,
        body.retriever,
        body.include_low_confidence,
        body.documents,
        where="body",
        field="question",
    )


@router.get(
    "/ask",
    response_model=AskResponse,
    tags=["questions"],
    summary="Answer a question (query-string form)",
    responses=responses(413, 422, 503, 504),
)
async def ask_get(
    state: StateDep,
    fast: FastAskDep,
    q: Annotated[
        Question,
        Query(
            description="The question.",
            examples=["Is the Sino-Russian relationship an alliance?"],
            json_schema_extra={"pattern": NOT_BLANK},
        ),
    ],
    k: Annotated[int | None, Query(ge=1, description="How many passages (default 5).")] = None,
    retriever: Annotated[RetrieverName | None, Query(description="Ranking method.")] = None,
    include_low_confidence: Annotated[
        bool, Query(description="Return passages even when abstaining.")
    ] = False,
    documents: Annotated[
        list[str] | None,
        Query(min_length=1, description=DOCUMENTS_HELP + " Repeat the parameter for several."),
    ] = None,
) -> Response:
    """Same as ``POST /ask``."""
    return await _answer(
        state,
        fast,
        q,
        k,
        retriever,
        include_low_confidence,
        documents,
        where="query",
        field="q",
    )


# -- passages and documents ---------------------------------------------------------------


@router.get(
    "/passages/{passage_id}",
    response_model=PassageResponse,
    tags=["collection"],
    summary="One passage with its citation",
    responses=responses(404, 413, 422, 503),
)
async def passage(passage_id: str, state: StateDep, service: ServiceDep) -> PassageResponse:
    found = service.passage(passage_id)
    state.metrics.passages.inc()
    return PassageResponse.of(found)


@router.get(
    "/documents",
    response_model=DocumentList,
    tags=["collection"],
    summary="The documents in the index",
    responses=responses(413, 503),
)
async def documents(service: ServiceDep) -> DocumentList:
    return DocumentList(documents=[DocumentOut.of(d) for d in service.documents()])


# OpenAPI cannot state a rule across two parameters, so it is written where clients read.
SPAN_RULE = "A span needs start <= end <= the document's length; any other is a 422 invalid_span."
SPAN_RESPONSES = responses(404, 413, 422, 503)
SPAN_RESPONSES[422] = {
    **SPAN_RESPONSES[422],
    "description": "Invalid parameters, or a span outside the document (`invalid_span`).",
    "content": {
        "application/json": {
            "example": {
                "error": {
                    "code": "invalid_span",
                    "message": "span [1, 0) is outside document 'essay' of length 9000",
                }
            }
        }
    },
}


@router.get(
    "/documents/{doc_id}",
    response_model=DocumentDetail,
    tags=["collection"],
    summary="One document's metadata, and optionally a span of its text",
    responses=SPAN_RESPONSES,
)
async def document(
    doc_id: str,
    service: ServiceDep,
    start: Annotated[
        int | None, Query(ge=0, description=f"Span start (default 0). {SPAN_RULE}")
    ] = None,
    end: Annotated[
        int | None,
        Query(ge=0, description=f"Span end, exclusive (default: length). {SPAN_RULE}"),
    ] = None,
    full: Annotated[bool, Query(description="Include the whole text.")] = False,
) -> DocumentDetail:
    """With ``start``/``end``, ``span.text`` is exactly ``text[start:end]``, to verify a citation.

    A span outside the document (``end < start`` or ``end > length``) is a 422.
    """
    span = None
    if start is None and end is None:
        doc = service.document(doc_id)
    else:
        doc, lo, hi = service.document_span(doc_id, start, end)
        span = SpanOut(start=lo, end=hi, text=doc.text[lo:hi])
    meta = DocumentOut.of(doc)
    return DocumentDetail(**meta.model_dump(), span=span, text=doc.text if full else None)


# -- operations -----------------------------------------------------------------------------


@router.get(
    "/healthz",
    response_model=HealthResponse,
    tags=["operations"],
    summary="Liveness: the process answers",
    responses=responses(413),
)
async def healthz() -> HealthResponse:
    return HealthResponse()


@router.get(
    "/readyz",
    response_model=ReadyResponse,
    tags=["operations"],
    summary="Readiness: 200 once the model and index are loaded, 503 before",
    responses={
        503: {"model": ReadyResponse, "description": "Still loading, or loading failed."},
        **responses(413),
    },
)
async def readyz(state: StateDep, response: Response) -> ReadyResponse:
    """Also reports whether the served index is stale (seeds or settings changed), and why."""
    service = state.service
    reasons = await state.stale_reasons() if service is not None else []
    body = ReadyResponse(
        ready=service is not None,
        status=state.phase,
        stale=bool(reasons),
        reasons=reasons,
        error=state.error,
        documents=len(service.snapshot.documents) if service else None,
        passages=len(service.snapshot.passages) if service else None,
        index_built_at=service.snapshot.manifest.built_at if service else None,
    )
    if service is None:
        response.status_code = 503
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return body


@router.get(
    "/metrics",
    tags=["operations"],
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {"content": {METRICS_MEDIA_TYPE: {"schema": {"type": "string"}}}},
        **responses(413),
    },
)
async def metrics(state: StateDep) -> Response:
    return Response(state.metrics.render(), media_type=METRICS_MEDIA_TYPE)


# -- the page -------------------------------------------------------------------------------


@router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    """The web page: static HTML whose script calls the JSON API."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8")
