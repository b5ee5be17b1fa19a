"""A set of object ids in 64 bytes an object: one sorted numpy array of their hex digests.

``verify`` and ``gc`` need the set of every object the versions' files tables name. As a Python
set of str it cost ~150 bytes an object on top of the Arrow column it came from, and with the
owners of each object (a dict of lists) ~1.4 KB: 1.4 GB at a million files. Here the hex digits
of a files table's ``sha256`` column are taken straight from its Arrow buffer (no Python object
per row), sorted, and merged with the other versions' (``|``); membership is a binary search,
many at once (``contains``). A hex digest never holds a NUL byte, so numpy's fixed-width
``S64`` keeps every one exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["CHUNK", "OidSet"]

CHUNK = 65_536  # ids handed out (and decoded to str) at once by ``chunks``
_WIDTH = 64


def _np() -> Any:
    import numpy as np

    return np


def _sorted_unique(ids: Any) -> Any:
    """``ids`` (an array of its own, sorted here in place) without repeats: one copy fewer than
    ``np.unique``, which sorts a copy."""
    np = _np()
    if len(ids) < 2:
        return ids
    ids.sort()
    keep = np.empty(len(ids), dtype=bool)
    keep[0] = True
    np.not_equal(ids[1:], ids[:-1], out=keep[1:])
    return ids if keep.all() else ids[keep]


class OidSet:
    """Sorted, unique hex object ids. Build with ``of``/``from_arrow``, combine with ``|``."""

    __slots__ = ("_ids",)

    def __init__(self, ids: Any = None) -> None:
        np = _np()
        self._ids = np.empty(0, dtype=f"S{_WIDTH}") if ids is None else ids

    @classmethod
    def of(cls, oids: Iterable[str]) -> OidSet:
        """The set of these ids (a few: a list is made of them)."""
        np = _np()
        listed = list(oids)
        if any(len(o) != _WIDTH for o in listed):
            raise ValueError("an object id is 64 hex digits")
        return cls(_sorted_unique(np.array(listed, dtype=f"S{_WIDTH}")))

    @classmethod
    def from_arrow(cls, column: Any) -> OidSet:
        """The ids of an Arrow string column of hex digests (a files table's ``sha256``), read
        from its buffers; ValueError if a value is null or not 64 characters long."""
        np = _np()
        parts = []
        for chunk in getattr(column, "chunks", [column]):
            if len(chunk) == 0:
                continue
            if chunk.null_count:
                raise ValueError("an object id is missing")
            offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int32)[chunk.offset:chunk.offset + len(chunk) + 1]
            if not (np.diff(offsets) == _WIDTH).all():
                raise ValueError("an object id is 64 hex digits")
            parts.append(np.frombuffer(chunk.buffers()[2], dtype=f"S{_WIDTH}", count=len(chunk),
                                       offset=int(offsets[0])))
        if not parts:
            return cls()
        return cls(_sorted_unique(np.concatenate(parts)))  # (a copy: the Arrow buffers are let go)

    @classmethod
    def union(cls, sets: list[OidSet]) -> OidSet:
        """The union of many (a table's row groups): one sort, not one per set."""
        np = _np()
        arrays = [s._ids for s in sets if len(s._ids)]
        if len(arrays) <= 1:
            return sets[0] if len(sets) == 1 else cls(arrays[0] if arrays else None)
        return cls(_sorted_unique(np.concatenate(arrays)))

    def __or__(self, other: OidSet) -> OidSet:
        np = _np()
        if not len(other._ids):
            return self
        if not len(self._ids):
            return other
        return OidSet(_sorted_unique(np.concatenate([self._ids, other._ids])))

    def __sub__(self, other: OidSet) -> OidSet:
        if not len(other._ids) or not len(self._ids):
            return self
        return OidSet(self._ids[~other._contains(self._ids)])

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, oid: object) -> bool:
        if not isinstance(oid, str) or len(oid) != _WIDTH:
            return False
        return bool(self._contains(_np().array([oid], dtype=f"S{_WIDTH}"))[0])

    def _contains(self, wanted: Any) -> Any:
        np = _np()
        at = np.searchsorted(self._ids, wanted)
        found = np.zeros(len(wanted), dtype=bool)
        inside = at < len(self._ids)
        found[inside] = self._ids[at[inside]] == wanted[inside]
        return found

    def contains(self, oids: list[str]) -> list[bool]:
        """For each of ``oids`` (a chunk of them), whether it is in the set."""
        if not oids:
            return []
        wanted = _np().array([o if len(o) == _WIDTH else "" for o in oids], dtype=f"S{_WIDTH}")
        return [bool(x) and len(o) == _WIDTH for x, o in zip(self._contains(wanted).tolist(), oids)]

    def chunks(self, size: int = CHUNK) -> Iterator[list[str]]:
        """The ids in sorted order, ``size`` at a time, as str."""
        for start in range(0, len(self._ids), size):
            yield [b.decode("ascii") for b in self._ids[start:start + size].tolist()]

    def __iter__(self) -> Iterator[str]:
        for chunk in self.chunks():
            yield from chunk
