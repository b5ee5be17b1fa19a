"""The stat cache: never re-hash a file whose (inode, size, mtime_ns, ctime_ns) is unchanged.

It is machine-local (inodes mean nothing elsewhere), so it lives in a small SQLite
file beside the vault config, not in the catalog, which may be a shared server.
``StateNoop`` is the do-nothing twin used when caching must be bypassed.
"""

from __future__ import annotations

import os
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import NamedTuple

__all__ = ["StatKey", "StateBase", "StateNoop", "SqliteState"]


class StatKey(NamedTuple):
    # A tuple, not a dataclass: tens of thousands are hashed per command.
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> StatKey:
        return cls(st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class StateBase(ABC):
    @abstractmethod
    def lookup(self, keys: Iterable[StatKey]) -> dict[StatKey, str]:
        """The cached oids of the keys that are unchanged."""

    @abstractmethod
    def save(self, entries: Iterable[tuple[StatKey, str]]) -> None: ...

    @abstractmethod
    def media(self, oids: Iterable[str]) -> dict[str, tuple[str, int | None, int | None]]:
        """Cached (media_type, width, height) by content hash."""

    @abstractmethod
    def save_media(self, entries: Iterable[tuple[str, str, int | None, int | None]]) -> None: ...

    def listing(self, snapshot_id: str) -> list[tuple[str, str, int]] | None:
        """A snapshot's (path, sha256, size) rows, if cached; None otherwise."""
        return None

    def save_listing(self, snapshot_id: str, rows: list[tuple[str, str, int]]) -> None:
        pass

    def close(self) -> None:
        pass


class StateNoop(StateBase):
    def lookup(self, keys):
        return {}

    def save(self, entries):
        pass

    def media(self, oids):
        return {}

    def save_media(self, entries):
        pass


_BATCH = 500
LISTING_MAX_ROWS = 300_000


def _best_effort(fn):
    """The cache is an optimization: a full or broken disk must not fail the command."""
    import functools

    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        try:
            return fn(self, *args, **kwargs)
        except sqlite3.Error:
            return {} if fn.__name__ in ("lookup", "media") else None

    return wrapper


class SqliteState(StateBase):
    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self._db = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS stat (
                inode INTEGER PRIMARY KEY, size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER, oid TEXT);
            CREATE TABLE IF NOT EXISTS media (
                oid TEXT PRIMARY KEY, media_type TEXT, width INTEGER, height INTEGER);
            CREATE TABLE IF NOT EXISTS listing (
                snapshot_id TEXT, path TEXT, sha256 TEXT, size INTEGER, PRIMARY KEY (snapshot_id, path))
                WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS listed (snapshot_id TEXT PRIMARY KEY, rows INTEGER);
            """
        )

    @_best_effort
    def lookup(self, keys):
        keys = list(keys)
        by_inode = {k.inode: k for k in keys}
        found: dict[StatKey, str] = {}
        if len(keys) > 5000:
            # For a big folder one pass over the table beats hundreds of IN (...) queries.
            rows = self._db.execute("SELECT inode, size, mtime_ns, ctime_ns, oid FROM stat")
        else:
            inodes = list(by_inode)
            rows = (row for i in range(0, len(inodes), _BATCH) for row in self._db.execute(
                f"SELECT inode, size, mtime_ns, ctime_ns, oid FROM stat WHERE inode IN ({','.join('?' * len(inodes[i:i + _BATCH]))})",
                inodes[i : i + _BATCH]))
        get = by_inode.get
        for inode, size, mtime, ctime, oid in rows:
            k = get(inode)
            if k is not None and k.size == size and k.mtime_ns == mtime and k.ctime_ns == ctime:
                found[k] = oid
        return found

    @_best_effort
    def save(self, entries):
        rows = [(k.inode, k.size, k.mtime_ns, k.ctime_ns, oid) for k, oid in entries]
        if rows:
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany("INSERT OR REPLACE INTO stat VALUES (?,?,?,?,?)", rows)

    @_best_effort
    def media(self, oids):
        oids = list(set(oids))
        out = {}
        for i in range(0, len(oids), _BATCH):
            chunk = oids[i : i + _BATCH]
            q = f"SELECT oid, media_type, width, height FROM media WHERE oid IN ({','.join('?' * len(chunk))})"
            for oid, mt, w, h in self._db.execute(q, chunk):
                out[oid] = (mt, w, h)
        return out

    @_best_effort
    def save_media(self, entries):
        rows = list(entries)
        if rows:
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany("INSERT OR REPLACE INTO media VALUES (?,?,?,?)", rows)

    @_best_effort
    def listing(self, snapshot_id):
        row = self._db.execute("SELECT rows FROM listed WHERE snapshot_id = ?", (snapshot_id,)).fetchone()
        if row is None:
            return None
        rows = self._db.execute(
            "SELECT path, sha256, size FROM listing WHERE snapshot_id = ? ORDER BY path", (snapshot_id,)
        ).fetchall()
        return rows if len(rows) == row[0] else None

    @_best_effort
    def save_listing(self, snapshot_id, rows):
        # A cache of the files table for commands that should not import pyarrow
        # (status, checkout). Very large snapshots are left to Parquet.
        if len(rows) > LISTING_MAX_ROWS:
            return
        with self._db:
            self._db.execute("BEGIN")
            if self._db.execute("SELECT 1 FROM listed WHERE snapshot_id = ?", (snapshot_id,)).fetchone():
                return
            self._db.executemany("INSERT OR REPLACE INTO listing VALUES (?,?,?,?)",
                                 ((snapshot_id, p, o, n) for p, o, n in rows))
            self._db.execute("INSERT INTO listed VALUES (?, ?)", (snapshot_id, len(rows)))

    def close(self):
        self._db.close()
