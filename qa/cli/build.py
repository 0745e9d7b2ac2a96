"""`qa index`: build the index from seeds/."""

from __future__ import annotations

from typing import Annotated

import typer

from qa.cli.common import progress_bar, settings_with, stdout


def index(
    force: Annotated[
        bool, typer.Option("--force", help="Rebuild even if the index is current.")
    ] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Only report whether the index is stale; exit 1 if so.")
    ] = False,
) -> None:
    """Build the index from the documents in seeds/."""
    from qa.documents import seed_files
    from qa.indexing import build_index, check_index
    from qa.service import load_embedder

    settings = settings_with()
    seed_files(settings.seeds_dir)
    if check:
        reasons = check_index(settings)
        for reason in reasons:
            stdout.print(f"stale: {reason}")
        if reasons:
            raise typer.Exit(1)
        stdout.print("index is current")
        return
    embedder = load_embedder(settings)
    if not force and not check_index(settings, embedder):
        stdout.print(f"index is current ({settings.index_dir}); use --force to rebuild")
        return
    with progress_bar() as progress:
        summary = build_index(settings, embedder, progress)
    stdout.print(
        f"indexed {summary.documents} documents: {summary.passages} passages, "
        f"{summary.tokens} tokens in {summary.seconds:.1f}s -> {summary.folder}"
    )
