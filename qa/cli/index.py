"""`qa index`: bring the index in line with seeds/, embedding only what changed."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from qa.cli.common import progress_bar, settings_with, stdout


def index(
    force: Annotated[
        bool, typer.Option("--force", help="Re-embed every document, even unchanged ones.")
    ] = False,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Only report what would be added, re-embedded or removed; exit 1 if stale.",
        ),
    ] = False,
) -> None:
    """Index the documents in seeds/: add new ones, re-embed changed ones, drop removed ones."""
    from qa.indexing import build_index, check_index, plan_index
    from qa.indexing.seeds import seed_files
    from qa.service import load_embedder

    settings = settings_with()
    seed_files(settings.seeds_dir)
    if check:
        reasons = check_index(settings)
        plan = plan_index(settings)
        for line in plan.lines():
            stdout.print(escape(line))
        for reason in reasons:
            stdout.print(f"stale: {escape(reason)}")
        if reasons or not plan.empty:
            raise typer.Exit(1)
        stdout.print(f"index is current ({escape(settings.vector_store)})")
        return
    embedder = load_embedder(settings)
    if not force and not check_index(settings, embedder):
        stdout.print(f"index is current ({settings.index_dir}); use --force to rebuild")
        return
    with progress_bar() as progress:
        summary = build_index(settings, embedder, progress, force=force)
    stdout.print(
        f"indexed {summary.documents} documents ({summary.added} added, {summary.changed} "
        f"changed, {summary.removed} removed; {summary.embedded} embedded): "
        f"{summary.passages} passages, {summary.tokens} tokens in {summary.seconds:.1f}s "
        f"-> {escape(summary.location)}"
    )
