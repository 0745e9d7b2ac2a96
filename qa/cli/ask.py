"""`qa ask`: print the passages that answer a question, with citations."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.text import Text

from qa.cli.common import fail, progress_bar, settings_with, stderr, stdout
from qa.config import RETRIEVERS


def ask(
    question: Annotated[str, typer.Argument(help="The question to answer.")],
    k: Annotated[int | None, typer.Option("-k", "--k", help="How many passages (1-50).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
    retriever: Annotated[str | None, typer.Option(help=f"One of: {', '.join(RETRIEVERS)}.")] = None,
    show_all: Annotated[
        bool, typer.Option("--all", help="Show low-confidence passages instead of abstaining.")
    ] = False,
    no_rebuild: Annotated[
        bool, typer.Option("--no-rebuild", help="Fail instead of rebuilding a stale index.")
    ] = False,
    documents: Annotated[
        list[str] | None,
        typer.Option(
            "--document",
            "-d",
            help="Answer only from this document id (see GET /documents); repeat for several.",
        ),
    ] = None,
) -> None:
    """Answer QUESTION from the documents, citing each passage."""
    from qa.errors import InvalidQuestionError
    from qa.indexing.seeds import seed_files
    from qa.schemas import AskResponse
    from qa.service import QAService

    settings = settings_with(retriever=retriever)
    k = settings.default_k if k is None else k
    if not question.strip():
        fail("question must not be empty")
    if not 1 <= k <= settings.max_k:
        fail(f"k must be between 1 and {settings.max_k}, got {k}")
    seed_files(settings.seeds_dir)  # a missing or empty seeds/ fails before the model loads

    with progress_bar() as progress:
        service = QAService.open(
            settings,
            rebuild=not no_rebuild and settings.auto_rebuild,
            notice=lambda message: stderr.print(escape(message)),
            progress=progress,
        )
    try:
        answer = service.ask(
            question, k, retriever, include_low_confidence=show_all, documents=documents or None
        )
    except InvalidQuestionError as exc:  # an unknown --document: known only once loaded
        fail(str(exc))
    if as_json:
        print(AskResponse.of(answer).model_dump_json(indent=2))
        return
    if not answer.answered:
        stderr.print("[yellow]No passage in the collection answers this question.[/yellow]")
        if not answer.hits:
            return
        stderr.print("Low-confidence passages follow (--all).")
    for hit in answer.hits:
        p = hit.passage
        stdout.print(
            f"[bold]{hit.rank}.[/bold] [dim]score {hit.score:.4f}[/dim]  "
            f"[cyan]{escape(p.label)}[/cyan] [dim](lines {p.line_start}-{p.line_end}, "
            f"chars {p.start}-{p.end})[/dim]"
        )
        body = Text(p.text)
        body.stylize("bold yellow", hit.quote.start - p.start, hit.quote.end - p.start)
        stdout.print(body)
        stdout.print()
    stdout.print(f"[dim]{answer.took_ms:.1f} ms[/dim]")
