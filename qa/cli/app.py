"""Command registry and the one place where domain errors become exit codes."""

from __future__ import annotations

import sys

import typer

from qa.cli import ask, bench, evaluate, index, mcp, serve

app = typer.Typer(
    name="qa",
    help="Offline question answering over the documents in seeds/, with citations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("ask")(ask.ask)
app.command("index")(index.index)
app.command("eval")(evaluate.evaluate)
app.command("serve")(serve.serve)
app.command("bench")(bench.bench)
app.command("mcp")(mcp.mcp)


def main() -> None:
    """Entry point: run the app, turning user-facing errors into one line and exit 2."""
    from qa.errors import QAError

    try:
        app()
    except QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
