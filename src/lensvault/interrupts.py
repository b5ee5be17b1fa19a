"""Ctrl-C that never lands inside Python's import system.

A KeyboardInterrupt raised while the main thread runs import machinery can leave an
import lock held for good: CPython's module-lock weakref callback swallows it ("Exception
ignored in ... _get_module_lock.<locals>.cb") between taking the global import lock and
releasing it. The next import from another thread — the pyarrow prefetch, a worker being
forked — then waits forever, and so does the command the user asked to stop (1 Ctrl-C in
~60 during a snapshot hung that way). The CLI's handler therefore defers the interrupt
while the interrupted frame is inside importlib and raises it a few milliseconds later,
once the import is done; everywhere else it behaves like Python's default handler.

``held()`` marks a section where Ctrl-C must wait (a fork, starting workers, taking a lock:
see ``parallel.sigint_held``). Blocking SIGINT with ``pthread_sigmask`` there is not enough:
the kernel then delivers it to another thread (the pyarrow prefetch, a progress bar's
refresher), and Python runs the handler in the main thread anyway — inside a fork's at-fork
callbacks, say, where the KeyboardInterrupt is swallowed and the command goes on as if
Ctrl-C had never been pressed. The handler notes it instead and it is raised when the
outermost held section ends.

``commit(label)`` is the moment a write becomes true (the catalog's COMMIT): a Ctrl-C
there waits for the outcome, and once the write is committed it is noted (``kept()``), so
the CLI can say that the version exists instead of "nothing was kept", and end a command
whose one write committed with exit 0 (a non-zero exit means nothing was written).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["commit", "held", "install", "kept", "several_writes", "writes_expected_after"]

_IMPORT_SYSTEM = frozenset({"<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>"})
_RETRY_S = 0.005
_held = 0  # depth of held() sections (the handler runs in the main thread)
_pending = False  # a Ctrl-C arrived while held
_kept: list[str] = []  # writes this process committed (labels such as NAME@VERSION)
_several = False  # the command makes several writes (the quickstart): a Ctrl-C still stops it


@contextmanager
def held() -> Iterator[None]:
    """Ctrl-C that arrives inside is raised when the outermost held section ends."""
    global _held, _pending
    _held += 1
    try:
        yield
    finally:
        _held -= 1
        if _held == 0 and _pending:
            _pending = False
            signal.raise_signal(signal.SIGINT)


@contextmanager
def commit(label: str) -> Iterator[list[str]]:
    """A write's commit: Ctrl-C inside waits for its outcome; once the body has returned (the
    write committed), its labels (``label`` and any the body appends to the yielded list) are
    recorded for ``kept()`` before a waiting Ctrl-C is raised."""
    labels = [label] if label else []
    with held():
        yield labels
        _kept.extend(labels)


def kept() -> list[str]:
    """The writes this process committed, in order."""
    return list(_kept)


def several_writes() -> None:
    """Declare that the command makes several writes, so a Ctrl-C after one of them still
    stops it (exit 130) rather than counting as coming after the command's write."""
    global _several
    _several = True


def writes_expected_after() -> bool:
    return _several


def _in_import_system(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code.co_filename in _IMPORT_SYSTEM:
            return True
        frame = frame.f_back
    return False


def _on_interrupt(signum: int, frame: FrameType | None) -> None:
    global _pending
    if _held:
        _pending = True
        return
    if _in_import_system(frame):
        # Come back when the import has (most likely) finished: the timer's SIGALRM sends
        # SIGINT again, so the retry obeys whatever holds SIGINT back (parallel.sigint_held)
        # instead of landing in a fork's at-fork callbacks, where an exception is ignored.
        signal.setitimer(signal.ITIMER_REAL, _RETRY_S)
        return
    raise KeyboardInterrupt


def _again(signum: int, frame: FrameType | None) -> None:
    signal.raise_signal(signal.SIGINT)


def install() -> None:
    """Install the import-safe Ctrl-C handler (main thread of a command-line process only:
    the library never changes a host program's signal handlers)."""
    if not hasattr(signal, "setitimer"):  # not POSIX: keep Python's default
        return
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return  # someone (a test harness, an embedding program) chose their own
    signal.signal(signal.SIGALRM, _again)
    signal.signal(signal.SIGINT, _on_interrupt)
