"""Sorted runs of raw sha256 digests: merged a window at a time, and looked up in a mapped file
without holding it.

Both big sets of object ids a command holds are sorted arrays of 32-byte digests: the record of
verified objects (store/verified.py: its base file and its deltas) and the set of objects verify
and gc need (oid_set.py). Held in memory they grow 32-56 bytes an object (issue 16: at 2M
objects verify peaked at 301 MB, gc 250, a checkout 306). Here they stay files:

- ``merged_runs`` merges sorted runs (arrays, or arrays mapped from files) a window of each at
  a time, the newest run's row winning;
- ``Mapped`` maps a file read-only, and ``find`` looks a batch of digests up in a sorted array of
  it: a table of where each bucket of digests starts (their first bits: ~8 digests a bucket,
  0.5 bytes an object) narrows each search to a few pages, and the batch is searched a span of
  rows at a time, the mapping's pages let go after each (``Mapped.drop``). A mapped page that was
  read counts in the process's RSS like any other until it is let go, and the kernel maps up to
  16 neighbouring pages on each fault: a batch searched whole would map the whole file.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from typing import Any

__all__ = ["MERGE_ROWS", "SPAN_ROWS", "ArrayRun", "Mapped", "bucket_starts", "find", "merged_runs", "prefix"]

MERGE_ROWS = 8192  # rows of each run a merge holds at once
SPAN_ROWS = 1 << 18  # rows of a mapped array a lookup reads before its pages are let go (8 MB of digests)
_WINDOW = 65_536  # digests read at once to fill a bucket table
_DONTNEED: int | None = getattr(mmap, "MADV_DONTNEED", None)


def _np() -> Any:
    import numpy as np

    return np


class Mapped:
    """A file mapped read-only; arrays are views of it (``array``). A file mapped here is never
    written again (a new one is renamed over it, or it is an unnamed temp file)."""

    def __init__(self, fd: int) -> None:
        self._map = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)  # (keeps its own duplicate of fd)

    def array(self, dtype: str, count: int, offset: int) -> Any:
        return _np().frombuffer(self._map, dtype=dtype, count=count, offset=offset)

    def drop(self) -> None:
        """Let the pages read so far go (they stay in the page cache: a later read maps them again).
        (Where the system has no such advice, the pages stay until the mapping goes.)"""
        if _DONTNEED is not None:
            self._map.madvise(_DONTNEED)


class ArrayRun:
    """A sorted run held as arrays (or mapped: ``mapped``, let go a span at a time as it is read).
    ``dead`` marks rows that forget their oid (True: every row)."""

    def __init__(self, oids: Any, keys: Any, dead: Any = None, mapped: Mapped | None = None) -> None:
        self.oids, self.keys, self.dead, self.n = oids, keys, dead, len(oids)
        self.mapped = mapped
        self._kept = 0  # rows read since the pages were last let go

    def rows(self, lo: int, hi: int) -> tuple[Any, Any, Any]:
        if self.mapped is not None:
            # (a merge reads each run a window at a time: every run's pages read so far would
            # add up, ~8 MB a run spilled at 2M objects)
            self._kept += hi - lo
            if self._kept > 4 * MERGE_ROWS:
                self.mapped.drop()
                self._kept = 0
        dead = self.dead
        if dead is True:
            dead = _np().ones(hi - lo, dtype=bool)
        elif dead is not None:
            dead = dead[lo:hi]
        return self.oids[lo:hi], self.keys[lo:hi], dead


def merged_runs(runs: list[Any]) -> Iterator[tuple[Any, Any]]:
    """The rows of sorted ``runs`` (oldest first; each has ``n`` and ``rows(lo, hi)`` → oids, keys,
    dead or None) merged in order, a window at a time: for an oid in several, the newest run's row,
    or none if that one forgets it. Each step takes from every run the rows up to the smallest last
    digest of the runs' next windows, so an oid's rows of every run are in the same step."""
    np = _np()
    pos = [0] * len(runs)
    while True:
        live = [i for i, r in enumerate(runs) if pos[i] < r.n]
        if not live:
            return
        heads = {i: runs[i].rows(pos[i], min(pos[i] + MERGE_ROWS, runs[i].n)) for i in live}
        full = [heads[i][0][-1] for i in live if runs[i].n - pos[i] > MERGE_ROWS]
        bound = min(full) if full else None  # (the run it comes from gives its whole window: progress)
        parts: list[tuple[Any, Any, Any]] = []
        for i in live:  # oldest first: in the stable sort below, an oid's newest row comes last
            oids, keys, dead = heads[i]
            end = len(oids) if bound is None else int(np.searchsorted(oids, bound, side="right"))
            parts.append((oids[:end], keys[:end], np.zeros(end, dtype=bool) if dead is None else dead[:end]))
            pos[i] += end
        oids = np.concatenate([p[0] for p in parts])
        order = np.argsort(oids, kind="stable")
        oids = oids[order]
        keys = np.concatenate([p[1] for p in parts])[order]
        dead = np.concatenate([p[2] for p in parts])[order]
        keep = np.ones(len(oids), dtype=bool)
        np.not_equal(oids[:-1], oids[1:], out=keep[:-1])
        keep &= ~dead
        yield oids[keep], keys[keep]


def prefix(raw: Any) -> Any:
    """The first 8 bytes of each raw digest as a big-endian integer: sorted as the digests are."""
    np = _np()
    return np.ascontiguousarray(raw).view(">u8").reshape(-1, 4)[:, 0].astype(np.uint64)


def bucket_starts(oids: Any, per_bucket: int = 1, mapped: Mapped | None = None) -> tuple[int, Any]:
    """(shift, starts): the rows of sorted ``oids`` whose ``prefix >> shift`` is b are
    ``starts[b]:starts[b + 1]``, with about ``per_bucket`` digests a bucket (uniform digests)."""
    np = _np()
    n = len(oids)
    bits = max(1, min(32, (n // per_bucket).bit_length()))
    shift = 64 - bits
    starts = np.empty((1 << bits) + 1, dtype=np.int64 if n >= 1 << 31 else np.int32)
    # starts[b]: the first row whose bucket is b or more. The digests are sorted, so a window of
    # them at a time fills the buckets up to its last one: their prefixes whole (and a count per
    # bucket) would be ~40 bytes an object more for a moment (~80 MB at 2M).
    filled = 0  # buckets below this are filled
    for lo in range(0, n, _WINDOW):
        b = (prefix(oids[lo:lo + _WINDOW]) >> np.uint64(shift)).astype(np.int64)
        if mapped is not None and (lo + _WINDOW) % SPAN_ROWS == 0:
            mapped.drop()
        first, top = int(b[0]), int(b[-1])
        if first >= filled:  # (else bucket ``first`` began in an earlier window)
            starts[filled:first + 1] = lo
        below = np.cumsum(np.bincount(b - first))  # below[j]: rows of buckets first..first + j
        k = max(filled, first + 1)
        starts[k:top + 1] = lo + below[k - first - 1:top - first]
        filled = top + 1
    starts[filled:] = n
    if mapped is not None:
        mapped.drop()
    return shift, starts


def find(oids: Any, raw: Any, buckets: tuple[int, Any], keys: Any = None,
         mapped: Mapped | None = None) -> tuple[Any, Any]:
    """(row of each of ``raw`` in sorted, unique ``oids``, -1 where it is not there; with ``keys``,
    the key rows of those found, zeros for the others). Each is a binary search within its
    bucket, all of them at once; on a ``mapped`` array a span of rows at a time, its pages let go
    after each."""
    np = _np()
    out = np.full(len(raw), -1, dtype=np.int64)
    got = None if keys is None else np.zeros((len(raw), keys.shape[1]), dtype=keys.dtype)
    if not len(raw) or not len(oids):
        return out, got
    shift, starts = buckets
    b = (prefix(raw) >> np.uint64(shift)).astype(np.int64)
    lo, hi = starts[b].astype(np.int64), starts[b + 1].astype(np.int64)
    if mapped is None:
        parts = [np.arange(len(raw))]
    else:
        order = np.argsort(lo, kind="stable")
        span = lo[order] // SPAN_ROWS
        parts = np.split(order, np.flatnonzero(span[1:] != span[:-1]) + 1)
    for part in parts:
        at, end, want = lo[part], hi[part], raw[part]
        while True:  # lower bound of ``want`` in [at, end)
            active = np.flatnonzero(at < end)
            if not len(active):
                break
            mid = (at[active] + end[active]) >> 1
            less = oids[mid] < want[active]
            at[active[less]] = mid[less] + 1
            end[active[~less]] = mid[~less]
        inside = at < len(oids)
        hit = np.zeros(len(part), dtype=bool)
        hit[inside] = oids[at[inside]] == want[inside]
        out[part[hit]] = at[hit]
        if got is not None:
            got[part[hit]] = keys[at[hit]]
        if mapped is not None:
            mapped.drop()
    return out, got
