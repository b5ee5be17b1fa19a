"""The stat cache: never re-hash a file whose (inode, size, mtime_ns, ctime_ns) is unchanged.

Like git's index, it is kept per folder: for each folder LensVault has read
(snapshotted, checked out, compared), one record maps every relative path to
its stat key, sha256 and media. A record is one marshal file, so loading the
cache of a 50,000-file folder is one read and a ~40 ms decode, where a SQLite
row per file cost ~0.2 s to fetch and ~0.3 s to write (and a SQLite blob twice
the write, WAL then checkpoint). The same goes for each snapshot's files-table
rows (the "listing"), which spare ``status``, ``checkout`` and an unchanged
re-snapshot the pyarrow import.

It is machine-local (inodes mean nothing elsewhere), so it lives in the vault's
``.lensvault/cache/``, not in the catalog, which may be a shared server.
Everything here is best-effort: an unreadable, damaged or foreign record is a
miss, never an error. ``StateBase`` is the interface the vault uses and
``FileState`` its implementation.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import struct
import sys
import threading
import zlib
from abc import ABC, abstractmethod

__all__ = ["StatKey", "StateBase", "FileState", "stat_key"]

# (inode, size, mtime_ns, ctime_ns)
StatKey = tuple
# Index entry: (inode, size, mtime_ns, ctime_ns, sha256, media_type, width, height); media_type
# is None when only the hash is known (e.g. after `status`).
Entry = tuple
# A files-table row: (path, sha256, size, media_type, width, height).
FileRow = tuple


def stat_key(st: os.stat_result) -> StatKey:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class StateBase(ABC):
    @abstractmethod
    def index(self, folder: str) -> dict[str, Entry]:
        """The cached entries of a folder (absolute, resolved path), by relative path."""

    @abstractmethod
    def save_index(self, folder: str, entries: dict[str, Entry]) -> None:
        """Replace a folder's entries (files no longer there are simply left out)."""

    def listing(self, snapshot_id: str) -> list[FileRow] | None:
        """A snapshot's files-table rows sorted by path, if cached; None otherwise."""
        return None

    def save_listing(self, snapshot_id: str, rows: list[FileRow]) -> None:
        pass

    def close(self) -> None:
        pass


LISTING_MAX_ROWS = 300_000
# marshal's format belongs to the interpreter: records written by another one are misses.
_TAG = f"lensvault-state-1-{sys.implementation.cache_tag}-{marshal.version}".encode()
_HEADER = struct.Struct(">I")  # crc32 of the payload: a torn or damaged record is a miss, never a wrong hash


def _encode(payload) -> bytes:
    data = marshal.dumps(payload, marshal.version)
    return _TAG + b"\n" + _HEADER.pack(zlib.crc32(data)) + data


def _decode(blob: bytes, kind: type):
    head = len(_TAG) + 1
    if blob[:head] != _TAG + b"\n":
        return None
    data = memoryview(blob)[head + _HEADER.size:]
    if _HEADER.unpack_from(blob, head)[0] != zlib.crc32(data):
        return None
    try:
        payload = marshal.loads(data)
    except Exception:
        return None
    return payload if isinstance(payload, kind) else None


class FileState(StateBase):
    """Records as files under ``.lensvault/cache/``: written whole to a temp file and renamed.

    No fsync: a record lost in a crash is only a miss, and the checksum turns a
    torn one into a miss too. Concurrent writers of one record: the last rename wins,
    and each wrote a complete, true record.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = os.fspath(root)

    def _path(self, kind: str, key: str) -> str:
        return f"{self.root}/{kind}/{hashlib.sha256(key.encode()).hexdigest()[:40]}"

    def _read(self, kind: str, key: str, type_: type):
        try:
            with open(self._path(kind, key), "rb") as f:
                return _decode(f.read(), type_)
        except OSError:
            return None

    def _write(self, kind: str, key: str, payload) -> None:
        path = self._path(kind, key)
        tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(_encode(payload))
            os.replace(tmp, path)
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass

    def index(self, folder):
        return self._read("index", folder, dict) or {}

    def save_index(self, folder, entries):
        self._write("index", folder, entries)

    def listing(self, snapshot_id):
        return self._read("listing", snapshot_id, list)

    def save_listing(self, snapshot_id, rows):
        # Very large snapshots are left to Parquet (the record would be hundreds of MB).
        if len(rows) > LISTING_MAX_ROWS or os.path.exists(self._path("listing", snapshot_id)):
            return  # content-addressed: an existing record is the same
        self._write("listing", snapshot_id, list(rows))
