"""The `qa` command line: thin commands over the core."""

from qa.cli.app import app, main

__all__ = ["app", "main"]
