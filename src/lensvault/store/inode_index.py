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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lensvault.store.local import LocalObjectStore

__all__ = ["LISTED_UP_TO", "InodeIndex"]

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

    def __init__(self, store: LocalObjectStore) -> None:
        np = _np()
        self.store = store
        keys, inodes = [], []
        root = str(store.root)
        for i in range(256):
            shard = f"{i:02x}"
            try:
                listed = [(e.name, e.inode()) for e in os.scandir(f"{root}/{shard}")]
            except FileNotFoundError:
                continue
            # (anything that is not an object's name sorts under a key no object asks about)
            key = _keys([(shard + name[:_PREFIX - 2]).encode("ascii", "replace").ljust(_PREFIX, b"0")
                         for name, _ in listed])
            ino = np.fromiter((ino for _, ino in listed), dtype=np.uint64, count=len(listed))
            # Sorted a shard at a time: the shards' keys are in shard order already, so the whole
            # is sorted once they are joined, without a sort (and its copies) of the whole.
            order = np.argsort(key, kind="stable")
            keys.append(key[order])
            inodes.append(ino[order])
        self._keys = np.concatenate(keys) if keys else np.empty(0, dtype=np.uint64)
        del keys
        self._inodes = np.concatenate(inodes) if inodes else np.empty(0, dtype=np.uint64)

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
        at = np.searchsorted(self._keys, wanted)
        found = np.zeros(len(oids), dtype=bool)
        inside = at < len(self._keys)
        hit = inside.copy()
        hit[inside] = self._keys[at[inside]] == wanted[inside]
        found[hit] = self._inodes[at[hit]] == np.asarray(inodes, dtype=np.uint64)[hit]
        ask = np.flatnonzero(~found).tolist()
        if not ask:
            return []
        bad = self.store.absent_or_damaged([oids[i] for i in ask], [sizes[i] for i in ask])
        return [ask[j] for j in bad]
