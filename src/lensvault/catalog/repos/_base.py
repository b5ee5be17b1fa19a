"""What every repository shares: the connection, batching of long IN lists, conflicts."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any, TypeAlias, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql import Executable

__all__ = ["CHUNK", "Conflict", "Repo", "RowT", "chunks", "name_version_statements", "savepoint"]

RowT: TypeAlias = Row[Any]  # a row: read-only, columns as attributes
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
    def __init__(self, conn: Connection):
        self.conn = conn

    def _all(self, query: Executable) -> list[RowT]:
        return list(self.conn.execute(query).all())

    def _first(self, query: Executable) -> RowT | None:
        return self.conn.execute(query).first()


def chunks(values: Iterable[T], n: int = CHUNK) -> Iterator[list[T]]:
    items = list(values)
    for i in range(0, len(items), n):
        yield items[i:i + n]


@contextmanager
def savepoint(conn: Connection) -> Iterator[None]:
    """A nested transaction: a refused write inside it is rolled back alone and raised as
    :class:`Conflict` (with the database's message), and the outer transaction goes on."""
    try:
        with conn.begin_nested():
            yield
    except sa.exc.IntegrityError as e:
        raise Conflict(str(e.orig)) from e


@cache
def name_version_statements(table: sa.Table) -> dict[str, Any]:
    """``get`` (by name and version) and ``exists`` (any version of a name) for a table of named
    versions, built once with bound values: read on every lineage or model request, building a
    statement and its cache key anew on every call cost about as much as running it."""
    name = table.c.name == sa.bindparam("name")
    return {"get": sa.select(table).where(name, table.c.version == sa.bindparam("version")),
            "exists": sa.select(table.c.id).where(name).limit(1)}
