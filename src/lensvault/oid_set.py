"""A set of object ids in 32 bytes an object: one sorted numpy array of their raw sha256 digests.

``verify`` and ``gc`` need the set of every object the versions' files tables name. As a Python
set of str it cost ~150 bytes an object on top of the Arrow column it came from, and with the
owners of each object (a dict of lists) ~1.4 KB: 1.4 GB at a million files. Here the hex digits
of a files table's ``sha256`` column are taken straight from its Arrow buffer (no Python object
per row), turned into the 32 bytes they spell (a table lookup over the whole array), sorted, and
merged with the other versions' (``|``); membership is a binary search, many at once
(``contains``). Raw digests sort as their hex does, and take half the room: a set, its union
with another and what ``verify`` derives from them are a few copies of the objects at once, so
the width is what sets the peak (issue 16: at 2M objects ``verify`` peaked at 425 MB with hex).
numpy's fixed-width ``S32`` compares and sorts them as bytes; its one quirk (trailing NUL bytes
dropped when an element is read out as ``bytes``) never applies: ids leave as hex, converted
from the array's bytes (``_hex``).

A set of more than ``SPILL_ROWS`` ids is not held: it is an unnamed temp file of its sorted
digests, mapped (sorted_runs.py). A union, a difference and a set built a row group at a time
are merges of sorted runs a window at a time; membership is a lookup in the mapped file, its
pages let go as it goes. (At 2M objects verify peaked at 301 MB and gc at 250 with the sets
held: a few copies of 64 MB.)
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from typing import IO, Any

from lensvault.sorted_runs import ArrayRun, Mapped, bucket_starts, find, merged_runs

__all__ = ["CHUNK", "SPILL_ROWS", "OidSet"]

CHUNK = 65_536  # ids handed out (and decoded to str) at once by ``chunks``
SPILL_ROWS = 1 << 18  # ids a set holds in memory at most (8 MB); a bigger one is a temp file
_FAN_IN = 8  # runs merged at once by ``union``
_WIDTH = 64  # hex digits of an id
_RAW = 32  # its bytes
_DIGITS = b"0123456789abcdef"
_TABLES: tuple[Any, Any] | None = None  # (hex digit byte → its value or 255, value → hex digit byte)


def _np() -> Any:
    import numpy as np

    return np


def _tables() -> tuple[Any, Any]:
    global _TABLES
    if _TABLES is None:
        np = _np()
        value = np.full(256, 255, dtype=np.uint8)
        value[np.frombuffer(_DIGITS, dtype=np.uint8)] = np.arange(16, dtype=np.uint8)
        _TABLES = (value, np.frombuffer(_DIGITS, dtype=np.uint8).copy())
    return _TABLES


def _raw(hex_rows: Any) -> tuple[Any, Any]:
    """(raw ids as ``S32``, which rows were 64 lowercase hex digits) of an (n, 64) uint8 array."""
    np = _np()
    value, _ = _tables()
    nibbles = value[hex_rows]
    valid = (nibbles != 255).all(axis=1)
    raw = np.empty((len(hex_rows), _RAW), dtype=np.uint8)
    np.left_shift(nibbles[:, 0::2], 4, out=raw)
    raw |= nibbles[:, 1::2]
    return raw.view(f"S{_RAW}").reshape(-1), valid


def _hex(raw: Any) -> list[str]:
    """The ids of a slice of the array, as str."""
    np = _np()
    _, digits = _tables()
    b = raw.view(np.uint8).reshape(-1, _RAW)
    out = np.empty((len(b), _WIDTH), dtype=np.uint8)
    out[:, 0::2] = digits[b >> 4]
    out[:, 1::2] = digits[b & 15]
    return [h.decode("ascii") for h in out.view(f"S{_WIDTH}").reshape(-1).tolist()]


def _of_strs(oids: list[str]) -> tuple[Any, Any]:
    """``_raw`` of str ids (anything not 64 characters long is invalid)."""
    np = _np()
    fixed = np.array([o.encode("ascii", "replace") if len(o) == _WIDTH else b"" for o in oids], dtype=f"S{_WIDTH}")
    raw, valid = _raw(fixed.view(np.uint8).reshape(-1, _WIDTH))
    return raw, valid


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
    """Sorted, unique object ids (raw digests; str hex in and out). Build with ``of``/``from_arrow``/
    ``union``, combine with ``|`` and ``-``. Past ``SPILL_ROWS`` ids, a mapped temp file."""

    __slots__ = ("_buckets", "_file", "_ids", "_mapped")

    def __init__(self, ids: Any = None) -> None:
        np = _np()
        self._ids = np.empty(0, dtype=f"S{_RAW}") if ids is None else ids
        self._file: IO[bytes] | None = None  # the temp file ``_ids`` is mapped from (spilled)
        self._mapped: Mapped | None = None
        self._buckets: tuple[int, Any] | None = None

    @classmethod
    def _of_windows(cls, windows: Iterable[Any]) -> OidSet:
        """The set of sorted, unique windows given in order: held if it is small, else written to an
        unnamed temp file (gone with the set, or the process) and mapped."""
        np = _np()
        held: list[Any] = []
        n = 0
        f: IO[bytes] | None = None
        for w in windows:
            n += len(w)
            if f is not None:
                f.write(w.tobytes())
                continue
            held.append(w)
            if n > SPILL_ROWS:
                f = tempfile.TemporaryFile(prefix="lensvault-oids-")  # noqa: SIM115 - open as long as the set
                for h in held:
                    f.write(h.tobytes())
                held = []
        if f is None:
            return cls(np.concatenate(held) if len(held) > 1 else held[0] if held else None)
        f.flush()
        mapped = Mapped(f.fileno())
        out = cls(mapped.array(f"S{_RAW}", n, 0))
        out._file, out._mapped = f, mapped
        return out

    def _run(self, forget: bool = False) -> ArrayRun:
        """This set as a sorted run for ``merged_runs`` (``forget``: its ids leave the merge)."""
        np = _np()
        return ArrayRun(self._ids, np.empty((len(self._ids), 0), dtype=np.uint8), True if forget else None,
                        self._mapped)

    @classmethod
    def _merged(cls, sets: list[OidSet], forget_last: bool = False) -> OidSet:
        runs = [s._run(forget=forget_last and i == len(sets) - 1) for i, s in enumerate(sets)]
        return cls._of_windows(oids for oids, _ in merged_runs(runs))

    @classmethod
    def of(cls, oids: Iterable[str]) -> OidSet:
        """The set of these ids (a few: a list is made of them)."""
        raw, valid = _of_strs(list(oids))
        if not valid.all():
            raise ValueError("an object id is 64 hex digits")
        return cls(_sorted_unique(raw))

    @classmethod
    def from_arrow(cls, column: Any) -> OidSet:
        """The ids of an Arrow string column of hex digests (a files table's ``sha256``), read
        from its buffers; ValueError if a value is null or not 64 hex digits."""
        np = _np()

        def parts() -> Iterator[OidSet]:
            for chunk in getattr(column, "chunks", [column]):
                if len(chunk) == 0:
                    continue
                if chunk.null_count:
                    raise ValueError("an object id is missing")
                offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int32)[chunk.offset:chunk.offset + len(chunk) + 1]
                if not (np.diff(offsets) == _WIDTH).all():
                    raise ValueError("an object id is 64 hex digits")
                hex_rows = np.frombuffer(chunk.buffers()[2], dtype=np.uint8, count=len(chunk) * _WIDTH,
                                         offset=int(offsets[0])).reshape(-1, _WIDTH)
                raw, valid = _raw(hex_rows)  # (its own array: the Arrow buffers are let go)
                if not valid.all():
                    raise ValueError("an object id is 64 hex digits")
                yield cls(_sorted_unique(raw))

        return cls.union(parts())

    @classmethod
    def union(cls, sets: Iterable[OidSet]) -> OidSet:
        """The union of many (a table's row groups, taken one at a time): the held ones joined and
        sorted once per ``SPILL_ROWS`` ids, each such run spilled, and the runs merged."""
        np = _np()
        runs: list[OidSet] = []
        held: list[Any] = []
        n = 0
        for s in sets:
            if s._mapped is not None:
                runs.append(s)
                continue
            if len(s._ids):
                held.append(s._ids)
                n += len(s._ids)
            if n > SPILL_ROWS:
                runs.append(cls._of_windows([_sorted_unique(np.concatenate(held))]))
                held, n = [], 0
            if len(runs) >= _FAN_IN:  # (a merge holds a window of each run: so many at most)
                runs = [cls._merged(runs)]
        # (one held array is a set's own: sorted and unique already)
        rest = cls(held[0] if len(held) == 1 else _sorted_unique(np.concatenate(held)) if held else None)
        if not runs:
            return rest
        return cls._merged([s for s in [*runs, rest] if len(s)])

    def __or__(self, other: OidSet) -> OidSet:
        np = _np()
        if not len(other._ids):
            return self
        if not len(self._ids):
            return other
        if self._mapped is None and other._mapped is None and len(self._ids) + len(other._ids) <= SPILL_ROWS:
            return OidSet(_sorted_unique(np.concatenate([self._ids, other._ids])))
        return OidSet._merged([self, other])

    def __sub__(self, other: OidSet) -> OidSet:
        if not len(other._ids) or not len(self._ids):
            return self
        if self._mapped is None:  # (what is left is no more: held too)
            return OidSet(self._ids[~other._contains(self._ids)])
        return OidSet._merged([self, other], forget_last=True)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, oid: object) -> bool:
        if not isinstance(oid, str) or len(oid) != _WIDTH:
            return False
        return self.contains([oid])[0]

    def _contains(self, wanted: Any) -> Any:
        np = _np()
        if self._mapped is not None:
            if self._buckets is None:
                self._buckets = bucket_starts(self._ids, 8, self._mapped)
            return find(self._ids, wanted, self._buckets, mapped=self._mapped)[0] >= 0
        at = np.searchsorted(self._ids, wanted)
        found = np.zeros(len(wanted), dtype=bool)
        inside = at < len(self._ids)
        found[inside] = self._ids[at[inside]] == wanted[inside]
        return found

    def contains(self, oids: list[str]) -> list[bool]:
        """For each of ``oids`` (a chunk of them), whether it is in the set."""
        if not oids:
            return []
        raw, valid = _of_strs(oids)
        return [bool(x) for x in (self._contains(raw) & valid).tolist()]

    def chunks(self, size: int = CHUNK) -> Iterator[list[str]]:
        """The ids in sorted order, ``size`` at a time, as str."""
        for start in range(0, len(self._ids), size):
            out = _hex(self._ids[start:start + size])
            if self._mapped is not None:
                self._mapped.drop()
            yield out

    def __iter__(self) -> Iterator[str]:
        for chunk in self.chunks():
            yield from chunk
