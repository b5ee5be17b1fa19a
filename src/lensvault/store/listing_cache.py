"""The store's shard folders as last listed with inodes, kept on disk: a folder that has not changed
since is not listed again.

Listing a million-object store with inodes (``inode_index``) takes ~1.3 s of CPU, and a
re-snapshot did it every time, though between two snapshots of a folder only the few shards
that got the new version's own objects (its manifest, snapshot document, files table) change.
A folder's mtime moves whenever a name is added to it, removed or renamed in it, so a shard whose
folder has the same inode and mtime as when it was listed still holds exactly the names (and
inodes) it held then: its listing is read from this file instead. A folder changed within a
timestamp tick of being stat'ed (``TICK``) could change again unseen in the same tick, so its
listing is kept but never trusted (recorded with mtime -1). The answers are those of a listing
made now, only cheaper.

The file (``{store}/inode-listing``): a magic line, 256 records (folder inode, folder mtime_ns,
object count), the crc32 of what follows, then every shard's keys and then every shard's inodes
(``inode_index``'s arrays, in shard order). Written to a temp file and renamed over the old one;
a file that is short, torn or fails its crc is ignored (every shard is listed).
"""

from __future__ import annotations

import os
import zlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lensvault.store.local import LocalObjectStore

__all__ = ["NAME", "TICK", "ListingCache"]

NAME = "inode-listing"
TICK = 2_000_000_000  # a folder changed this recently (ns) may change again within its mtime's tick (vfat: 2 s)
_MAGIC = b"lensvault-inode-listing-1\n"


def meta_type() -> Any:
    import numpy as np

    return np.dtype([("ino", "<u8"), ("mtime", "<i8"), ("count", "<u8")])


class ListingCache:
    """The listings of the last time, as loaded (every shard unknown if there is no good file)."""

    def __init__(self, store: LocalObjectStore) -> None:
        import numpy as np

        self.store = store
        self.meta = np.zeros(256, dtype=meta_type())
        self.meta["mtime"] = -1  # (no shard known)
        self._keys = self._inodes = np.empty(0, dtype=np.uint64)
        self._starts = np.zeros(257, dtype=np.uint64)
        try:
            with open(f"{store.root}/{NAME}", "rb") as f:
                data = f.read()
        except OSError:
            return
        self._load(data)

    def _load(self, data: bytes) -> None:
        import numpy as np

        head = len(_MAGIC) + 256 * meta_type().itemsize
        if not data.startswith(_MAGIC) or len(data) < head + 4:
            return
        meta = np.frombuffer(data, dtype=meta_type(), count=256, offset=len(_MAGIC))
        total = int(meta["count"].sum())
        body = memoryview(data)[head + 4:]
        if len(body) != 16 * total or zlib.crc32(body) != int.from_bytes(data[head:head + 4], "little"):
            return  # torn, damaged, or from another layout: listed again
        self.meta = meta.copy()
        self._keys = np.frombuffer(data, dtype="<u8", count=total, offset=head + 4)
        self._inodes = np.frombuffer(data, dtype="<u8", count=total, offset=head + 4 + 8 * total)
        self._starts = np.concatenate(([0], np.cumsum(meta["count"], dtype=np.uint64)))

    def shard(self, i: int, st: os.stat_result) -> tuple[Any, Any] | None:
        """(keys, inodes) of shard ``i`` as last listed, if its folder (stat'ed: ``st``) is unchanged since."""
        m = self.meta[i]
        if int(m["mtime"]) < 0 or int(m["ino"]) != st.st_ino or int(m["mtime"]) != st.st_mtime_ns:
            return None
        a, b = int(self._starts[i]), int(self._starts[i + 1])
        return self._keys[a:b], self._inodes[a:b]

    def save(self, meta: Any, keys: Any, inodes: Any) -> None:
        """Keep a new listing of every shard (``meta`` per shard: folder inode, mtime or -1, count),
        unless it is the one loaded. Best effort: a store that cannot be written lists next time."""
        import numpy as np

        if np.array_equal(meta, self.meta):
            return
        body = keys.astype("<u8").tobytes() + inodes.astype("<u8").tobytes()
        files = self.store.files
        tmp = files.temp_path()
        try:
            with open(tmp, "wb") as f:
                f.write(_MAGIC + meta.astype(meta_type()).tobytes() + zlib.crc32(body).to_bytes(4, "little"))
                f.write(body)
            os.replace(tmp, f"{self.store.root}/{NAME}")
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass
