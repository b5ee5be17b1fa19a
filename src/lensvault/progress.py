"""Progress reporting without a dependency: the library reports, the CLI renders.

Library functions take ``progress: Progress``; the default does nothing. The CLI
passes a rich-backed implementation when stderr is a terminal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

__all__ = ["NO_PROGRESS", "Progress"]


class Progress(Protocol):
    def task(self, description: str, total: int | None) -> AbstractContextManager[Callable[[int], None]]:
        """A context manager yielding ``advance(n)``."""


class _NoProgress:
    @contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Callable[[int], None]]:
        yield _noop


def _noop(n: int = 1) -> None:
    pass


NO_PROGRESS: Progress = _NoProgress()


class _TerminalProgress:
    """Rich bars on stderr, for library calls that run long on their own (the CLI has its own)."""

    @contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Callable[[int], None]]:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as Bars

        with Bars(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True) as bars:
            tid = bars.add_task(description, total=total)

            def advance(n: int = 1) -> None:
                bars.advance(tid, n)

            yield advance


def terminal() -> Progress:
    """Bars on stderr when it is a terminal; nothing otherwise (a log file, a notebook's pipe)."""
    import sys

    return _TerminalProgress() if sys.stderr.isatty() else NO_PROGRESS
