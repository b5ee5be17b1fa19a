"""Is this the catalog it should be? Missing, empty, damaged and full catalogs, told apart.

A vault's catalog is created by ``init`` (or ``catalog rebuild``) and by nothing else.
Opening one checks, cheaply, that it is still there and whole: the SQLite file exists and
its header is intact and not truncated, every table its migrations created is present,
and its identity row is there. Errors that only show up later (a page of a truncated
file, a table dropped meanwhile, a full disk at COMMIT) are translated where the catalog
is used (``Catalog.read`` / ``Catalog.begin``), so no command ends in a traceback and
none takes a damaged catalog for an empty one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lensvault.errors import CatalogDamaged, CatalogError, CatalogMissing, LensVaultError, StorageError

if TYPE_CHECKING:
    from lensvault.catalog.sql import Conn

__all__ = ["Inspection", "check_sqlite_file", "inspect", "sqlite_path", "translate"]

REBUILD = "`lensvault catalog rebuild` recreates it from the store and data/manifests/"
REBUILD_FORCE = ("`lensvault catalog rebuild --force` rebuilds it from the store and data/manifests/ "
                 "(the damaged catalog is kept beside it)")
_SQLITE_MAGIC = b"SQLite format 3\x00"


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` URL (None for other databases and in-memory ones)."""
    if not url.startswith("sqlite:///"):
        return None
    rest = url[len("sqlite:///"):]
    if not rest or rest == ":memory:":
        return None
    return Path(rest)


def check_sqlite_file(path: Path) -> None:
    """Refuse a missing, empty, overwritten or truncated SQLite file before SQLite sees it.

    SQLite itself would create a missing file, read a 0-byte one as an empty database, and
    report a truncated one only when a query reaches a missing page.
    """
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        raise CatalogMissing(f"the catalog {path} is missing", where=str(path), fix=REBUILD, state="missing") from None
    except OSError as e:
        raise CatalogError(f"the catalog {path} cannot be read ({e.strerror})", where=str(path),
                           fix="check the file's permissions") from e
    if size == 0:
        raise CatalogMissing(f"the catalog {path} is empty (0 bytes)", where=str(path), fix=REBUILD, state="empty")
    try:
        header = _read_header(path)
    except OSError as e:
        raise CatalogError(f"the catalog {path} cannot be read ({e.strerror})", where=str(path),
                           fix="check the file's permissions") from e
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise CatalogDamaged(f"the catalog {path} is not a SQLite database (overwritten or damaged)",
                             where=str(path), fix=REBUILD_FORCE)
    expected = _expected_size(header)
    if expected and size < expected:
        # A checkpoint of another process writes page 1 (the new size) before the pages that
        # grow the file: with a WAL beside the file, or for a moment, a shorter file is normal.
        import time

        time.sleep(0.05)
        size = os.stat(path).st_size
        wal = Path(f"{path}-wal")
        if size < expected and not (wal.exists() and wal.stat().st_size > 0):
            raise CatalogDamaged(f"the catalog {path} is truncated ({size:,} of {expected:,} bytes)",
                                 where=str(path), fix=REBUILD_FORCE)


# (device, inode) → a descriptor kept open for the life of the process; see _read_header.
_HEADER_FDS: dict[tuple[int, int], int] = {}


def _read_header(path: Path) -> bytes:
    """The first 100 bytes of a catalog file, through a descriptor that is never closed.

    Closing any descriptor of a file drops every POSIX lock the process holds on it — the
    locks SQLite's connections to that file rely on. A second vault opened on the same
    catalog in one process (a server, ``lensvault.open`` twice) would otherwise pull the locks
    from under the first one's connections, whose next query fails with "disk I/O error".
    """
    st = os.stat(path)
    fd = _HEADER_FDS.get((st.st_dev, st.st_ino))
    if fd is None:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        _HEADER_FDS[(st.st_dev, st.st_ino)] = fd
    return os.pread(fd, 100, 0)


def _expected_size(header: bytes) -> int:
    """The file size the header promises, or 0 when it promises nothing."""
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    # The page count is valid when its "version-valid-for" equals the change counter (SQLite
    # 3.7.0+ writes both); a whole file is never shorter than that.
    return pages * page_size if header[24:28] == header[92:96] else 0


@dataclass(frozen=True)
class Inspection:
    tables: frozenset[str]
    applied: frozenset[str]
    catalog_id: str | None


def inspect(conn: Conn) -> Inspection:
    """Tables, applied migrations and identity, in three small queries (on either connection:
    opening a SQLite catalog needs no SQLAlchemy)."""
    from lensvault.catalog.sql import SqliteReader, scalar, values

    if isinstance(conn, SqliteReader) or conn.dialect.name == "sqlite":
        tables = set(values(conn, "SELECT name FROM sqlite_master WHERE type = 'table'"))
    else:
        tables = set(values(conn, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"))
    applied: set[str] = set()
    if "schema_migrations" in tables:
        applied = set(values(conn, "SELECT name FROM schema_migrations"))
    cid = None
    if "catalog_info" in tables:
        cid = scalar(conn, "SELECT catalog_id FROM catalog_info")
    return Inspection(frozenset(tables), frozenset(applied), cid)


def problems(found: Inspection, where: str) -> LensVaultError | None:
    """What is wrong with an existing catalog, or None if it is whole."""
    from lensvault.catalog.migrations import tables_of

    ours = found.tables - {"sqlite_sequence"}
    if not ours:
        return CatalogMissing(f"the catalog {where} is empty (it has no tables)", where=where, fix=REBUILD,
                              state="empty")
    if "schema_migrations" not in ours or not found.applied:
        return CatalogDamaged(f"the catalog {where} has lost its migration records (table schema_migrations)",
                              where=where, fix=REBUILD_FORCE)
    missing = sorted(tables_of(found.applied) - ours)
    if missing:
        return CatalogDamaged(f"the catalog {where} is missing tables: {', '.join(missing)}", where=where,
                              fix=REBUILD_FORCE)
    if "m0007_catalog_info" in found.applied and found.catalog_id is None:
        return CatalogDamaged(f"the catalog {where} has lost its identity row (table catalog_info was emptied)",
                              where=where, fix=REBUILD_FORCE)
    return None


def _disk_full(where: str) -> bool:
    try:
        st = os.statvfs(Path(where).parent)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 64 * 1024


def translate(exc: BaseException, where: str) -> LensVaultError | None:
    """A clear error for a database failure that means the catalog is gone, damaged or full.

    None for everything else (constraint violations and the like are the caller's to handle).
    """
    orig = getattr(exc, "orig", exc)
    msg = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    state = getattr(orig, "sqlstate", None) or ""
    low = msg.lower()
    if "database or disk is full" in low or state == "53100":
        return StorageError(f"the disk holding the catalog is full ({msg})", where=where,
                            fix="free space on that disk and run the command again; nothing was recorded")
    # SQLite cannot even make its -wal/-shm files on a full disk
    if ("disk i/o error" in low or "unable to open database file" in low) and _disk_full(where):
        return StorageError(f"the disk holding the catalog is full ({msg})", where=where,
                            fix="free space on that disk and run the command again; nothing was recorded")
    if "disk i/o error" in low:
        return StorageError("the catalog could not be read or written: disk I/O error", where=where,
                            fix="check the disk (dmesg); then `lensvault verify`")
    if ("file is not a database" in low or "malformed" in low or state in ("XX001", "XX002")):
        return CatalogDamaged(f"the catalog {where} is damaged ({msg})", where=where, fix=REBUILD_FORCE)
    if low.startswith("no such table") or state == "42P01":
        return CatalogDamaged(f"the catalog {where} is missing a table ({msg})", where=where, fix=REBUILD_FORCE)
    if state == "3D000" or ("database" in low and "does not exist" in low):
        return CatalogMissing(f"the catalog database does not exist ({msg})", where=where,
                              fix="create the database (e.g. `createdb NAME`), then " + REBUILD, state="missing")
    if "readonly database" in low or "read-only" in low:
        return StorageError(f"the catalog is read-only ({msg})", where=where,
                            fix="make the catalog file and its folder writable for this user")
    if "unable to open database file" in low:
        return CatalogError(f"the catalog cannot be opened ({msg})", where=where,
                            fix="check that the file and its folder exist and are readable and writable")
    if "database is locked" in low:
        return CatalogError(f"the catalog is locked by another process ({msg})", where=where,
                            fix="wait for the other LensVault command to finish, then try again")
    return None
