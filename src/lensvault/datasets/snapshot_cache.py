"""Things derived from one snapshot, kept for the life of the process.

A snapshot never changes (its id is the hash of what it holds), so anything computed from it —
an index of its images, counts per class — is right forever: it is kept here keyed by
(snapshot id, what), with no expiry and no invalidation, only a bound on how many are held
(least recently used goes first). A long-lived process (``lensvault serve``) builds each once
instead of once per request; a command that runs once pays what it paid before.

Concurrent askers of the same missing entry wait for one computation instead of each running
their own (fifty requests arriving on a cold server build one index, not fifty).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

__all__ = ["MAX_ENTRIES", "clear", "kept"]

T = TypeVar("T")
MAX_ENTRIES = 16

_entries: OrderedDict[tuple[str, Hashable], Any] = OrderedDict()
_building: dict[tuple[str, Hashable], threading.Lock] = {}
_lock = threading.Lock()


def kept(snapshot_id: str, what: Hashable, compute: Callable[[], T]) -> T:
    """``compute()`` for (snapshot, what), made once and kept (bounded by ``MAX_ENTRIES``)."""
    key = (snapshot_id, what)
    with _lock:
        if key in _entries:
            _entries.move_to_end(key)
            found: T = _entries[key]
            return found
        building = _building.setdefault(key, threading.Lock())
    with building:
        with _lock:
            if key in _entries:  # made by the asker we waited for
                _entries.move_to_end(key)
                done: T = _entries[key]
                return done
        value = compute()  # an error is raised to this asker; the next one tries again
        with _lock:
            _entries[key] = value
            _building.pop(key, None)
            while len(_entries) > MAX_ENTRIES:
                _entries.popitem(last=False)
    return value


def clear() -> None:
    """Forget everything kept (tests; a process that wants its memory back)."""
    with _lock:
        _entries.clear()
