"""Helpers shared by commands: settings with flag overrides, consoles, progress bars."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from qa.config import Settings

stdout = Console(soft_wrap=True)  # pipes and greps get whole lines
stderr = Console(stderr=True)


def settings_with(**overrides: Any) -> Settings:
    """Environment settings, with the flags the user actually passed on top, validated.

    A bad value raises ``SettingsError`` (one line, exit 2), from a flag or a variable.
    """
    return Settings.from_env(
        **{key: value for key, value in overrides.items() if value is not None}
    )


def fail(message: str) -> NoReturn:
    """One line on stderr and exit code 2: the contract for every usage error."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


@contextmanager
def progress_bar() -> Iterator[Any]:
    """A rich progress bar driven by the core's ``(stage, done, total)`` callback."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
    ) as bar:
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update
