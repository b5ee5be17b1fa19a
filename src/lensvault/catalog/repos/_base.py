"""What every repository shares: the connection, batching of long IN lists, conflicts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

__all__ = ["CHUNK", "Conflict", "Repo", "chunks", "savepoint"]

# Ids per IN (...) list: far below SQLite's and PostgreSQL's limits on bound parameters.
CHUNK = 500


class Conflict(Exception):
    """A write the database refused because its key is taken (a unique or primary key, a
    reservation): the constraint decided, so a racing writer that won is found here too.
    ``existing`` is the row holding the key, when the repository could read it."""

    def __init__(self, message: str = "", existing=None):
        super().__init__(message)
        self.existing = existing


class Repo:
    def __init__(self, conn):
        self.conn = conn

    def _all(self, query) -> list:
        return self.conn.execute(query).all()

    def _first(self, query):
        return self.conn.execute(query).first()


def chunks(values, n: int = CHUNK) -> Iterator[list]:
    values = list(values)
    for i in range(0, len(values), n):
        yield values[i:i + n]


@contextmanager
def savepoint(conn):
    """A nested transaction: a refused write inside it is rolled back alone and raised as
    :class:`Conflict` (with the database's message), and the outer transaction goes on."""
    try:
        with conn.begin_nested():
            yield
    except sa.exc.IntegrityError as e:
        raise Conflict(str(e.orig)) from e
