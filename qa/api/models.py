"""Request and response models of the HTTP API (the answer itself is ``qa.schemas``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from qa.config import RetrieverName
from qa.schemas import DocumentOut


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


# The upper bound comes from Settings.max_question_chars and is checked by the route,
# so the limit stays configurable; the app patches it into the OpenAPI schema.
# The pattern tells schema-driven clients (and fuzzers) what "not blank" means: a
# character that ``str.strip`` keeps. It lists the 29 characters Python strips, since
# a JSON Schema ``\S`` is ECMAScript's, which keeps U+001C to U+001F and U+0085.
# The validator gives the clearer message.
NOT_BLANK = (
    r"[^\t\n\u000b\u000c\r\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a"
    r"\u2028\u2029\u202f\u205f\u3000]"
)
DOCUMENTS_HELP = (
    "Answer only from these documents (ids from GET /documents). "
    "An unknown id is a 422 that names it. Default: the whole collection."
)
Question = Annotated[str, AfterValidator(_not_blank)]


class AskRequest(BaseModel):
    """``POST /ask``. Unknown fields and wrong types are rejected rather than guessed at."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [{"question": "Is the Sino-Russian relationship an alliance?", "k": 5}]
        },
    )

    question: Question = Field(
        description="The question, at most QA_MAX_QUESTION_CHARS (1000) characters.",
        examples=["Is the Sino-Russian relationship an alliance?"],
        json_schema_extra={"pattern": NOT_BLANK},
    )
    k: int | None = Field(
        default=None,
        ge=1,
        strict=False,  # JSON 5.0 is an integer too; strings and booleans are refused below
        description="How many passages, 1..QA_MAX_K (50). Default: QA_DEFAULT_K (5).",
        examples=[5],
    )
    retriever: RetrieverName | None = Field(
        default=None, description="Ranking method. Default: QA_RETRIEVER (hybrid)."
    )
    include_low_confidence: bool = Field(
        default=False,
        description="Return the best passages even when the service abstains (answered=false).",
    )
    documents: list[str] | None = Field(
        default=None,
        min_length=1,
        description=DOCUMENTS_HELP,
        examples=[["china-russia-relations-in-the-age-of-trump"]],
    )

    @field_validator("k", mode="before")
    @classmethod
    def _integer_only(cls, value: object) -> object:
        if isinstance(value, bool | str):
            raise ValueError("must be an integer")
        return value


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"


class ReadyResponse(BaseModel):
    """``/readyz``: whether the service answers, and whether its index is out of date."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ready": True,
                    "status": "ready",
                    "stale": False,
                    "reasons": [],
                    "error": None,
                    "documents": 1,
                    "passages": 120,
                    "index_built_at": "2026-11-28T19:34:28Z",
                }
            ]
        }
    )

    ready: bool
    status: Literal["loading", "ready", "failed"]
    stale: bool = Field(description="The served index no longer matches seeds/ or the settings.")
    reasons: list[str] = Field(description="Why the index is stale; empty when it is current.")
    error: str | None = Field(default=None, description="Why loading failed.")
    documents: int | None = None
    passages: int | None = None
    index_built_at: str | None = None


class DocumentList(BaseModel):
    documents: list[DocumentOut]


class SpanOut(BaseModel):
    start: int = Field(ge=0)
    end: int = Field(ge=0, description="Exclusive.")
    text: str = Field(description="Exactly the document text from start to end.")


class DocumentDetail(DocumentOut):
    span: SpanOut | None = Field(default=None, description="Present when start or end is given.")
    text: str | None = Field(default=None, description="The whole text, with ?full=true.")
