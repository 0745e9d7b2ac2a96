"""The answer schema: one pydantic model shared by `qa ask --json` and `POST /ask`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from qa.store.snapshot import DocumentInfo
from qa.types import Answer, Hit, Passage


class CitationOut(BaseModel):
    doc_id: str = Field(examples=["china-russia-relations-in-the-age-of-trump"])
    title: str
    section: str = Field(examples=["Security and geopolitics"])
    paragraphs: list[int] = Field(examples=[[2]])
    start: int = Field(description="Character offset of the passage in the document.")
    end: int = Field(description="End offset (exclusive): text == document[start:end].")
    lines: list[int] = Field(min_length=2, max_length=2, examples=[[37, 37]])
    label: str = Field(examples=["Convergence and divergence: China-Russia… — Introduction ¶2"])


class QuoteOut(BaseModel):
    text: str
    start: int = Field(description="Offset in the document, not in the passage.")
    end: int


class ExplainOut(BaseModel):
    dense_score: float | None = Field(description="Cosine similarity with the question.")
    dense_rank: int | None
    bm25_score: float | None
    bm25_rank: int | None
    fused_score: float


class PassageOut(BaseModel):
    rank: int = Field(ge=1)
    score: float
    id: str
    text: str
    citation: CitationOut
    quote: QuoteOut
    explain: ExplainOut


class AskResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "question": "Is the Sino-Russian relationship an alliance?",
                    "answered": True,
                    "passages": [],
                    "took_ms": 12.5,
                }
            ]
        }
    )

    question: str
    answered: bool
    passages: list[PassageOut]
    took_ms: float

    @classmethod
    def of(cls, answer: Answer) -> AskResponse:
        return cls(
            question=answer.question,
            answered=answer.answered,
            passages=[passage_out(hit) for hit in answer.hits],
            took_ms=round(answer.took_ms, 3),
        )


def passage_out(hit: Hit) -> PassageOut:
    p = hit.passage
    e = hit.explain
    return PassageOut(
        rank=hit.rank,
        score=round(hit.score, 6),
        id=p.passage_id,
        text=p.text,
        citation=citation_out(p),
        quote=QuoteOut(text=hit.quote.text, start=hit.quote.start, end=hit.quote.end),
        explain=ExplainOut(
            dense_score=e.dense_score,
            dense_rank=e.dense_rank,
            bm25_score=e.bm25_score,
            bm25_rank=e.bm25_rank,
            fused_score=e.fused_score,
        ),
    )


def citation_out(p: Passage) -> CitationOut:
    return CitationOut(
        doc_id=p.doc_id,
        title=p.title,
        section=p.section,
        paragraphs=list(p.paragraphs),
        start=p.start,
        end=p.end,
        lines=[p.line_start, p.line_end],
        label=p.label,
    )


# Shared by GET /passages, GET /documents and the MCP tools that read them.


class DocumentOut(BaseModel):
    id: str = Field(examples=["china-russia-relations-in-the-age-of-trump"])
    title: str
    path: str = Field(description="Relative to the project root.", examples=["seeds/essay.txt"])
    sha256: str
    length: int = Field(description="Length of the text in characters.")

    @classmethod
    def of(cls, doc: DocumentInfo) -> DocumentOut:
        return cls(
            id=doc.doc_id, title=doc.title, path=doc.path, sha256=doc.sha256, length=doc.length
        )


class PassageResponse(BaseModel):
    id: str = Field(examples=["3f2a9c0d1b4e5f67"])
    text: str
    tokens: int
    citation: CitationOut

    @classmethod
    def of(cls, passage: Passage) -> PassageResponse:
        return cls(
            id=passage.passage_id,
            text=passage.text,
            tokens=passage.token_count,
            citation=citation_out(passage),
        )
