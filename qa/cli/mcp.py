"""`qa mcp`: the MCP server over stdio, for AI assistants that launch it."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from qa.cli.common import fail


def mcp(
    project: Annotated[
        Path | None,
        typer.Option(
            "--project",
            help="The project folder (with seeds/ and index/). Default: the current folder.",
        ),
    ] = None,
) -> None:
    """Serve the MCP tools (search, get_passage, get_document, list_documents) on stdio.

    Needs no environment variables: assistants start it with a minimal one.
    """
    if project is not None:
        if not project.is_dir():
            fail(f"project folder {project} does not exist")
        os.chdir(project)  # relative QA_* paths and the defaults (seeds/, index/) resolve here

    from qa.config import Settings
    from qa.mcp.stdio import run_stdio

    base = Settings.from_env()
    # Absolute paths, so a message in the assistant names the folder the server looked in.
    folders = ("seeds_dir", "index_dir", "questions_path", "cache_dir")
    settings = base.with_overrides(**{name: getattr(base, name).resolve() for name in folders})
    logging.basicConfig(
        stream=sys.stderr,
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    run_stdio(settings)
