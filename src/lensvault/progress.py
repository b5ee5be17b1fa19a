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
