"""The MCP server: tools and resources over ``QAService``, for any transport.

``build_server(source, settings)`` is transport-free: ``qa mcp`` runs it over
stdio and ``qa serve`` mounts it at ``/mcp``. Each transport supplies a
``Source``: where the loaded service comes from (or why it is not ready) and how
a question is asked (the HTTP server shares ``/ask``'s cache and batcher).

``search`` answers in exactly the ``AskResponse`` schema of ``POST /ask``, and
bad arguments get the same messages as the HTTP API, as MCP tool errors.
"""

# No ``from __future__ import annotations``: the SDK reads each tool's signature for
# its JSON schema, and the limits in it (max_k, max_question_chars) are closure values.
import re
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any, Protocol

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from mcp_types import CallToolResult, Resource, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from qa.config import Settings
from qa.errors import InvalidQuestionError, InvalidSpanError, NotFoundError
from qa.schemas import AskResponse, DocumentOut, PassageResponse
from qa.service import QAService
from qa.store.snapshot import DocumentInfo
from qa.types import Answer
from qa.version import __version__

DOCUMENT_URI = "qa://documents/{doc_id}"
NON_NEGATIVE: dict[str, Any] = {"minimum": 0}  # in the schema; checked in the tool for the message
INSTRUCTIONS = """\
Searches a local document collection and returns passages that answer a question, each
with a citation (document, section, paragraph, character span) and a quote. Cite the
label of every passage you use. `answered: false` means nothing in the collection is
similar enough: say so rather than guess. Use get_passage or get_document to read around
a citation; list_documents gives the ids that `documents` can restrict a search to."""


Lifespan = Callable[[Any], AbstractAsyncContextManager[None]]


class NotReadyError(Exception):
    """The index or model is not loaded yet, or failed to load; the message says which."""


class Source(Protocol):
    """What a transport gives the tools: the service, and how to ask it."""

    async def service(self) -> QAService:
        """The loaded service, or ``NotReadyError``."""
        ...

    async def ask(
        self, service: QAService, question: str, k: int, documents: list[str] | None
    ) -> Answer: ...


class ListedDocument(DocumentOut):
    """A document as ``GET /documents`` lists it, plus its address as a resource."""

    uri: str = Field(description="The document as an MCP resource.")

    @classmethod
    def listed(cls, doc: DocumentInfo) -> "ListedDocument":
        return cls(**DocumentOut.of(doc).model_dump(), uri=document_uri(doc.doc_id))


class DocumentList(BaseModel):
    documents: list[ListedDocument]


class DocumentText(ListedDocument):
    start: int = Field(description="Offset of `text` in the document.")
    end: int = Field(description="End offset, exclusive: text == document[start:end].")
    text: str


def document_uri(doc_id: str) -> str:
    return DOCUMENT_URI.format(doc_id=doc_id)


def render(response: AskResponse) -> str:
    """The answer for assistants that read only text: each quote under its citation label."""
    if not response.answered and not response.passages:
        return "No passage in the collection answers this question."
    lines = [] if response.answered else ["Low confidence: these passages may not answer it."]
    for p in response.passages:
        c = p.citation
        lines.append(
            f"[{p.rank}] {c.label} (document {c.doc_id}, chars {c.start}-{c.end}, passage {p.id})"
        )
        lines.append(f"    “{' '.join(p.quote.text.split())}”")
    return "\n".join(lines)


def _invalid(field: str, message: str) -> ToolError:
    """A tool error worded like the HTTP API's 422 (``field: problem``)."""
    return ToolError(f"{field}: {message}")


_SERVICE_FIELD = re.compile(r"^(question|k|retriever) must ")


def _service_error(exc: InvalidQuestionError) -> ToolError:
    """The service's ``k must be ...`` as the API words it: ``k: must be ...``."""
    text = str(exc)
    match = _SERVICE_FIELD.match(text)
    if match:
        return _invalid(match.group(1), text[len(match.group(1)) + 1 :])
    return ToolError(text)


class QAServer(MCPServer[Any]):
    """``MCPServer`` that also lists every indexed document as a resource once ready."""

    def __init__(self, source: Source, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source = source

    async def list_resources(self) -> list[Resource]:
        listed = await super().list_resources()
        try:
            service = await self.source.service()
        except NotReadyError:
            return listed
        return listed + [
            Resource(
                uri=document_uri(d.doc_id),
                name=d.doc_id,
                title=d.title,
                description=f"{d.path}, {d.length} characters",
                mime_type="text/plain",
            )
            for d in service.documents()
        ]


def build_server(source: Source, settings: Settings, lifespan: Lifespan | None = None) -> QAServer:
    """The tools and the document resources, validated with ``settings``' limits."""
    server = QAServer(
        source,
        name="qa-cite",
        version=__version__,
        instructions=INSTRUCTIONS,
        log_level="WARNING",
        lifespan=lifespan,
    )
    max_k, max_chars = settings.max_k, settings.max_question_chars
    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    async def ready() -> QAService:
        try:
            return await source.service()
        except NotReadyError as exc:
            raise ToolError(f"not ready: {exc}") from None

    @server.tool(annotations=read_only, structured_output=True)
    async def search(
        question: Annotated[
            str, Field(description=f"The question, in plain words (at most {max_chars} chars).")
        ],
        k: Annotated[
            int,
            Field(
                description=f"How many passages, 1 to {max_k}.",
                json_schema_extra={"minimum": 1, "maximum": max_k},
            ),
        ] = settings.default_k,
        documents: Annotated[
            list[str] | None,
            Field(
                description="Answer only from these document ids (from list_documents). "
                "Default: the whole collection."
            ),
        ] = None,
    ) -> Annotated[CallToolResult, AskResponse]:
        """Find the passages that answer a question, best first, each with its citation
        (document, section, paragraph, character span), a quote, and scores.

        Same answer as the service's POST /ask. `answered` is false when no passage is
        similar enough; then no passages are returned.
        """
        if not question.strip():
            raise _invalid("question", "must not be empty")
        if len(question) > max_chars:
            raise _invalid(
                "question", f"must be at most {max_chars} characters, got {len(question)}"
            )
        if not 1 <= k <= max_k:
            raise _invalid("k", f"must be between 1 and {max_k}, got {k}")
        if documents is not None and not documents:
            raise _invalid("documents", "list should have at least 1 item after validation, not 0")
        service = await ready()
        try:
            service.scope(documents)
        except InvalidQuestionError as exc:
            raise _invalid("documents", str(exc)) from None
        try:
            answer = await source.ask(service, question, k, documents)
        except InvalidQuestionError as exc:
            raise _service_error(exc) from None
        response = AskResponse.of(answer)
        return CallToolResult(
            content=[TextContent(type="text", text=render(response))],
            structured_content=response.model_dump(mode="json"),
        )

    @server.tool(annotations=read_only)
    async def get_passage(
        id: Annotated[str, Field(description="A passage id, as returned by search.")],
    ) -> PassageResponse:
        """One passage with its citation, to quote it exactly or check a search result."""
        service = await ready()
        try:
            passage = service.passage(id)
        except NotFoundError as exc:
            raise ToolError(str(exc)) from None
        return PassageResponse.of(passage)

    @server.tool(annotations=read_only)
    async def get_document(
        id: Annotated[str, Field(description="A document id (citation.doc_id).")],
        start: Annotated[
            int | None,
            Field(description="Span start offset (default 0).", json_schema_extra=NON_NEGATIVE),
        ] = None,
        end: Annotated[
            int | None,
            Field(
                description="Span end offset, exclusive (default: length).",
                json_schema_extra=NON_NEGATIVE,
            ),
        ] = None,
    ) -> DocumentText:
        """A document's metadata and its text from start to end (the whole text by
        default), to read around a citation: a citation's start/end give its exact text."""
        for name, value in (("start", start), ("end", end)):
            if value is not None and value < 0:
                raise _invalid(name, "input should be greater than or equal to 0")
        service = await ready()
        try:
            doc, lo, hi = service.document_span(id, start, end)
        except (NotFoundError, InvalidSpanError) as exc:
            raise ToolError(str(exc)) from None
        meta = ListedDocument.listed(doc)
        return DocumentText(**meta.model_dump(), start=lo, end=hi, text=doc.text[lo:hi])

    @server.tool(annotations=read_only)
    async def list_documents() -> DocumentList:
        """Every document in the collection: ids for `documents` in search, titles, lengths."""
        service = await ready()
        return DocumentList(documents=[ListedDocument.listed(d) for d in service.documents()])

    @server.resource(DOCUMENT_URI, mime_type="text/plain", title="A document's full text")
    async def document_resource(doc_id: str) -> str:
        """The whole text of one document; citation offsets index into it."""
        try:
            service = await source.service()
        except NotReadyError as exc:
            raise ResourceNotFoundError(f"not ready: {exc}") from None
        try:
            return service.document(doc_id).text
        except NotFoundError as exc:
            raise ResourceNotFoundError(str(exc)) from None

    return server
