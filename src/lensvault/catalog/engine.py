"""Engines by URL scheme, drivers imported lazily, with SQLite tuned for many readers."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from lensvault.errors import CatalogError, UsageError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

__all__ = ["SQLITE_POOL_SIZE", "create_engine_for", "normalize_url"]

# Connections to a SQLite file kept open for reuse: as many as threads may read at once (the
# server runs at most this many requests at a time: lensvault/server/app.py). A connection
# given back to a full pool is closed, and the next one opened again with its PRAGMAs.
SQLITE_POOL_SIZE = 16


def normalize_url(url: str, *, base: Path | None = None) -> str:
    """Resolve relative SQLite paths against the vault; pick psycopg 3 for plain postgresql://."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        rel = url[len("sqlite:///") :]
        if rel and rel != ":memory:" and base is not None and not Path(rel).is_absolute():
            return "sqlite:///" + str((base / rel).absolute())
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def create_engine_for(url: str, *, create: bool = False) -> Engine:
    """An engine for ``url``. Without ``create`` a SQLite file is opened read-write but never
    created: a vault's catalog that has gone missing must stay missing, not come back empty."""
    import sqlalchemy as sa

    if url.startswith("sqlite"):
        from lensvault.catalog.health import sqlite_path

        path = sqlite_path(url)
        if path is not None and not create:
            import sqlite3
            from urllib.parse import quote

            uri = f"file:{quote(str(path))}?mode=rw"
            # The URL still picks the pool (a file database's); the creator opens the file.
            engine = sa.create_engine(url, pool_size=SQLITE_POOL_SIZE, creator=lambda: sqlite3.connect(
                uri, uri=True, timeout=60, check_same_thread=False))
        else:
            engine = sa.create_engine(url, connect_args={"timeout": 60})

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: object) -> None:  # a DB-API connection (sqlite3)
            # pysqlite's own transaction handling defers BEGIN, which breaks
            # SAVEPOINT and "BEGIN IMMEDIATE"; we issue BEGIN ourselves.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # Writers take the lock up front (IMMEDIATE), so two writers queue on
            # busy_timeout instead of one failing with "database is locked" when
            # it upgrades a read lock. Readers take a plain BEGIN and, under WAL,
            # never wait for a writer.
            if conn.get_execution_options().get("lv_read"):
                conn.exec_driver_sql("BEGIN")
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if url.startswith("postgresql"):
        try:
            import psycopg  # noqa: F401
        except ImportError as e:
            raise UsageError(
                "PostgreSQL catalogs need the psycopg driver",
                where=url.split("@")[-1],
                fix="pip install 'lensvault[postgres]'",
            ) from e
        return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    raise CatalogError(
        f"unsupported catalog URL {url.split(':', 1)[0]!r}",
        where=url,
        fix="use sqlite:///PATH or postgresql://USER@HOST/DB",
    )
