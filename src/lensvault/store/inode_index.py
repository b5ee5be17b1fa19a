"""Every object of a local store and its inode, listed once: for asking about a whole folder's objects.

A re-snapshot of a hardlinked folder asks the store, for each unchanged file, whether its object
is still there and intact. A stat per object is ~3 µs, and at a million files that was half the
re-snapshot (more than the walk). An object that is still the inode of the file it was linked
from is that file, so it is there and of the file's size; listing the shard folders with their
inode numbers answers that for ~0.5 µs an object, and only the objects that are not the file's
inode (copied, restored, or gone) are stat'ed as before.

The listing is kept as two numpy arrays, 16 bytes an object: the first 8 bytes of each object's
id as an integer, sorted, and its inode. A store of more than ``LISTED_UP_TO`` objects is not
listed (``LocalObjectStore.inode_index``): the index stays under ~64 MB, and a bigger store is
asked a stat per object as before — slower, in memory that does not grow. Two objects may share a prefix: the lookup then finds one
of them, and the other's inode differs from its file's, so it is stat'ed — never a wrong answer.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from lensvault.store.listing_cache import TICK, ListingCache, meta_type

if TYPE_CHECKING:
    from collections.abc import Iterable

    from lensvault.store.local import LocalObjectStore

__all__ = ["LISTED_UP_TO", "InodeIndex", "SharedListing"]

LISTED_UP_TO = 4_000_000  # objects in the store, at most, for it to be listed
_PREFIX = 16  # hex digits of an id kept (the shard's 2 and 14 more: 64 bits)


def _np() -> Any:
    import numpy as np

    return np


def _keys(prefixes: list[bytes]) -> Any:
    """The 64-bit integers that 16 hex digits each spell (a table lookup over the whole array)."""
    np = _np()
    if not prefixes:
        return np.empty(0, dtype=np.uint64)
    value = np.zeros(256, dtype=np.uint64)
    value[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = np.arange(16, dtype=np.uint64)
    digits = value[np.frombuffer(b"".join(prefixes), dtype=np.uint8).reshape(-1, _PREFIX)]
    out = np.zeros(len(prefixes), dtype=np.uint64)
    for i in range(_PREFIX):
        out <<= np.uint64(4)
        out |= digits[:, i]
    return out


class InodeIndex:
    """The store's objects as (id prefix, inode), sorted by prefix. ``absent_or_damaged`` answers as
    the store's does, from the listing where an object is its file's inode."""

    def __init__(self, store: LocalObjectStore, keys: Any = None, inodes: Any = None) -> None:
        """``keys``/``inodes``: the listing, if made already (``SharedListing``); else listed here
        (and kept: ``listing_cache``)."""
        self.store = store
        if keys is None:
            cache = ListingCache(store)
            keys, inodes, meta = _listed(store, range(256), cache)
            cache.save(meta, keys, inodes)
        self._keys, self._inodes = keys, inodes

    def __len__(self) -> int:
        return len(self._keys)

    def absent_or_damaged(self, oids: list[str], sizes: list[int], inodes: list[int] | None = None) -> list[int]:
        """As ``LocalObjectStore.absent_or_damaged`` with the files' ``inodes``: an object listed as
        its file's inode is there and intact; any other is asked of the store (a stat)."""
        np = _np()
        if not oids:
            return []
        if inodes is None:
            return self.store.absent_or_damaged(oids, sizes)
        wanted = _keys([o[:_PREFIX].encode("ascii", "replace").ljust(_PREFIX, b"0") for o in oids])
        # Looked up in sorted order: each search then starts where the last one's path through the
        # listing was, in the CPU's cache (a chunk of random ids took ~4x as long).
        order = np.argsort(wanted)
        wanted = wanted[order]
        at = np.searchsorted(self._keys, wanted)
        found = np.zeros(len(oids), dtype=bool)
        inside = at < len(self._keys)
        hit = inside.copy()
        hit[inside] = self._keys[at[inside]] == wanted[inside]
        found[hit] = self._inodes[at[hit]] == np.asarray(inodes, dtype=np.uint64)[order][hit]
        ask = np.sort(order[~found]).tolist()
        if not ask:
            return []
        bad = self.store.absent_or_damaged([oids[i] for i in ask], [sizes[i] for i in ask])
        return [ask[j] for j in bad]


def _listed(store: LocalObjectStore, shards: Iterable[int], cache: ListingCache) -> tuple[Any, Any, Any]:
    """(keys, inodes, meta) of the objects in ``shards`` (in increasing order), sorted by key; a shard
    unchanged since ``cache`` listed it is taken from there. ``meta``: each shard's folder (inode,
    mtime, count), the mtime -1 where the folder changed too recently to be trusted next time."""
    np = _np()
    keys, inodes = [], []
    root = str(store.root)
    meta = np.zeros(len(shards := list(shards)), dtype=meta_type())
    seen = time.time_ns()  # before any folder is stat'ed: what "too recently" is measured from
    for k, i in enumerate(shards):
        shard = f"{i:02x}"
        try:
            st = os.stat(f"{root}/{shard}")
            kept = cache.shard(i, st)
            if kept is None:
                kept = _list_shard(root, shard)
        except FileNotFoundError:
            meta[k] = (0, -1, 0)
            continue
        meta[k] = (st.st_ino, st.st_mtime_ns if st.st_mtime_ns + TICK <= seen else -1, len(kept[0]))
        keys.append(kept[0])
        inodes.append(kept[1])
    if not keys:
        return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.uint64), meta
    return np.concatenate(keys), np.concatenate(inodes), meta


def _list_shard(root: str, shard: str) -> tuple[Any, Any]:
    np = _np()
    listed = [(e.name, e.inode()) for e in os.scandir(f"{root}/{shard}")]
    # (anything that is not an object's name sorts under a key no object asks about)
    key = _keys([(shard + name[:_PREFIX - 2]).encode("ascii", "replace").ljust(_PREFIX, b"0") for name, _ in listed])
    ino = np.fromiter((ino for _, ino in listed), dtype=np.uint64, count=len(listed))
    # Sorted a shard at a time: the shards' keys are in shard order already, so the whole
    # is sorted once they are joined, without a sort (and its copies) of the whole.
    order = np.argsort(key, kind="stable")
    return key[order], ino[order]


class SharedListing:
    """The listing made by the two processes of a shared walk (``record_scan``), half the shards each,
    and swapped through two pipes, so that neither waits for the whole listing before it walks
    (~1 s at a million objects, which the second process of the walk used to wait for: it is
    forked from the first, after the listing). Made before the fork; each process then asks
    ``index(part)``.

    The order of the swap keeps it from ever waiting on itself: the process of part 1 sends its
    half, then reads; the process of part 0 reads, then sends. A process that cannot get the other
    half (the other one failed, stopped early, or was never forked) lists it itself: slower, never
    wrong."""

    def __init__(self, store: LocalObjectStore) -> None:
        self.store = store
        self.cache = ListingCache(store)  # (loaded before the fork: both processes have it)
        self.alone = False  # set when no second process was forked: one whole listing, made once
        self._whole: InodeIndex | None = None
        self._pipes = (os.pipe(), os.pipe())  # (read, write) from part 1 to part 0, and from 0 to 1
        self._open = {fd for pipe in self._pipes for fd in pipe}  # (a number closed twice may be another file's)

    def index(self, part: int | None) -> InodeIndex:
        """The whole listing, for the process of ``part`` (0 or 1; None: a walk not shared)."""
        if part is None or self.alone:
            self.close()
            if self._whole is None:
                self._whole = InodeIndex(self.store)
            return self._whole
        (r10, w10), (r01, w01) = self._pipes
        read, write = (r10, w01) if part == 0 else (r01, w10)
        for fd in ((w10, r01) if part == 0 else (r10, w01)):  # the other process's ends
            self._close(fd)
        mine = _listed(self.store, _HALVES[part], self.cache)
        other = None
        try:
            if part == 0:
                other = _receive(read)
                _send(write, mine)
            else:
                _send(write, mine)
                other = _receive(read)
        except (OSError, EOFError):
            pass  # the other process is gone: its half is listed here
        finally:
            self._close(read)
            self._close(write)
        if other is None:
            other = _listed(self.store, _HALVES[1 - part], self.cache)
        np = _np()
        low, high = (mine, other) if part == 0 else (other, mine)
        keys, inodes = np.concatenate((low[0], high[0])), np.concatenate((low[1], high[1]))
        if part == 0:  # (one of the two keeps the listing)
            self.cache.save(np.concatenate((low[2], high[2])), keys, inodes)
        return InodeIndex(self.store, keys, inodes)

    def close(self) -> None:
        """Close every end this process still holds: the other process then sees this one gone."""
        for fd in list(self._open):
            self._close(fd)

    def _close(self, fd: int) -> None:
        if fd in self._open:
            self._open.discard(fd)
            os.close(fd)


_HALVES = (range(128), range(128, 256))


def _send(fd: int, half: tuple[Any, Any, Any]) -> None:
    keys, inodes, meta = half
    for data in (len(keys).to_bytes(8, "little"), keys.tobytes(), inodes.tobytes(), meta.tobytes()):
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]


def _receive(fd: int) -> tuple[Any, Any, Any]:
    np = _np()
    n = int.from_bytes(_read_exactly(fd, 8), "little")
    keys = np.frombuffer(_read_exactly(fd, 8 * n), dtype=np.uint64)
    inodes = np.frombuffer(_read_exactly(fd, 8 * n), dtype=np.uint64)
    return keys, inodes, np.frombuffer(_read_exactly(fd, 128 * meta_type().itemsize), dtype=meta_type())


def _read_exactly(fd: int, n: int) -> bytearray:
    out = bytearray(n)
    view = memoryview(out)
    while view:
        got = os.readv(fd, [view])
        if not got:
            raise EOFError("the other process of the walk stopped before it sent its half")
        view = view[got:]
    return out
