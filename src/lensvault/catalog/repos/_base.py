"""What every repository shares: the connection, its reads as SQL text, batching of long IN
lists, conflicts.

Reads are SQL text run through ``lensvault.catalog.sql`` on either connection (the stdlib
``sqlite3`` reader of ``Catalog.query()`` or a SQLAlchemy one), so a read-only command on a
SQLite catalog never imports SQLAlchemy. Writes stay SQLAlchemy Core statements against the
live table definitions, imported inside the method that writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from lensvault.catalog import sql

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = ["CHUNK", "Conflict", "Repo", "RowT", "chunks", "name_version_sql", "savepoint"]

RowT: TypeAlias = sql.Row  # a row: read-only, columns as attributes
T = TypeVar("T")

# Ids per IN (...) list: far below SQLite's and PostgreSQL's limits on bound parameters.
CHUNK = 500


class Conflict(Exception):
    """A write the database refused because its key is taken (a unique or primary key, a
    reservation): the constraint decided, so a racing writer that won is found here too.
    ``existing`` is the row holding the key, when the repository could read it."""

    def __init__(self, message: str = "", existing: RowT | None = None):
        super().__init__(message)
        self.existing = existing


class Repo:
    def __init__(self, conn: sql.Conn):
        self.conn = conn

    @property
    def _sa(self) -> Connection:
        """The SQLAlchemy connection a write needs (a write is never given a read-only reader)."""
        assert not isinstance(self.conn, sql.SqliteReader), "a write through a read-only connection"
        return self.conn

    def _all(self, query: str, params: Mapping[str, Any] | None = None) -> list[RowT]:
        return sql.rows(self.conn, query, params)

    def _first(self, query: str, params: Mapping[str, Any] | None = None) -> RowT | None:
        return sql.first(self.conn, query, params)

    def _scalar(self, query: str, params: Mapping[str, Any] | None = None) -> Any:
        return sql.scalar(self.conn, query, params)

    def _batched(self, query: str, name: str, values: Iterable[Any], params: Mapping[str, Any] | None = None
                 ) -> Iterator[list[RowT]]:
        """``query`` once per batch of ``values`` (bound as the list ``name``: ``IN (:name)``)."""
        for chunk in chunks(values):
            yield self._all(query, {**(params or {}), name: chunk})


def chunks(values: Iterable[T], n: int = CHUNK) -> Iterator[list[T]]:
    items = list(values)
    for i in range(0, len(items), n):
        yield items[i:i + n]


@contextmanager
def savepoint(conn: Connection) -> Iterator[None]:
    """A nested transaction: a refused write inside it is rolled back alone and raised as
    :class:`Conflict` (with the database's message), and the outer transaction goes on."""
    import sqlalchemy as sa

    try:
        with conn.begin_nested():
            yield
    except sa.exc.IntegrityError as e:
        raise Conflict(str(e.orig)) from e


def name_version_sql(table: str) -> dict[str, str]:
    """``get`` (by name and version) and ``exists`` (any version of a name) for a table of named versions."""
    return {"get": f"SELECT * FROM {table} WHERE name = :name AND version = :version",
            "exists": f"SELECT id FROM {table} WHERE name = :name LIMIT 1"}
