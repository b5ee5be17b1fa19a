"""The catalog's read queries as SQL text, run on either kind of connection.

A read query is written once, as SQL text with ``:named`` parameters, and runs unchanged on

* a :class:`SqliteReader` — the standard library's ``sqlite3``, read-only — when the catalog is
  a SQLite file: the read-only commands (``dataset log``, ``runs list``, ``lineage``, ``why`` …)
  then never import SQLAlchemy, whose import alone cost 160–230 ms of a 275 ms command;
* a SQLAlchemy ``Connection`` (``text()``; PostgreSQL, and every transaction that writes), so
  a repository's reads inside a write transaction see that transaction's rows.

Both drivers take ``:name`` parameters. A list value is expanded here into ``:name_0, :name_1,
…`` (an ``IN`` list), the same way for both. Rows come back as named tuples (attribute access by
column name, ``_mapping``), with the Boolean columns as ``bool`` on both databases; listings that
want speed take plain tuples (:func:`tuples`).
"""

from __future__ import annotations

import re
import sqlite3
from collections import namedtuple
from collections.abc import Mapping
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = ["BOOLEAN_COLUMNS", "Conn", "Row", "SqliteReader", "first", "rows", "scalar", "tuples", "values"]

# The catalog's Boolean columns (runs.clean, dataset_versions.forced, model_versions.forced and
# .dirty): SQLite stores them as 0/1, PostgreSQL as booleans; rows give bool on both, as the typed
# SQLAlchemy statements did. No other column of the catalog has one of these names.
BOOLEAN_COLUMNS = frozenset({"clean", "forced", "dirty"})

Row: TypeAlias = Any  # a named tuple of the columns: row.name, row[0], row._mapping["name"]


class SqliteReader:
    """A read-only connection to a SQLite catalog file, through the standard library's driver.

    Opened ``mode=rw`` (as the engine opens it: never creates a missing file) with ``PRAGMA
    query_only``, so no statement can write. Each use is one deferred transaction (``BEGIN`` …
    ``ROLLBACK``), so every query of a use sees the same snapshot, as a ``Catalog.read()`` does,
    and the next use a fresh one. Under WAL a reader never waits for a writer; the busy timeout
    (60 s, the engine's) covers the moments it must. ``Catalog.query`` keeps idle ones for reuse
    (opening one and reading the schema cost about as much as a short read).
    """

    def __init__(self, path: Path):
        from urllib.parse import quote

        self.raw = sqlite3.connect(f"file:{quote(str(path))}?mode=rw", uri=True, timeout=60,
                                   isolation_level=None, check_same_thread=False)
        try:
            self.raw.execute("PRAGMA query_only=ON")
        except BaseException:
            self.raw.close()
            raise

    def begin(self) -> None:
        self.raw.execute("BEGIN")

    def end(self) -> None:
        if self.raw.in_transaction:
            self.raw.execute("ROLLBACK")

    def close(self) -> None:
        try:
            self.end()
        finally:
            self.raw.close()


Conn: TypeAlias = "Connection | SqliteReader"

_PARAM = re.compile(r"(?<![:\w]):(\w+)")


def _expanded(sql: str, params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``:ids`` with a list value → ``:ids_0, :ids_1, …`` (an empty list → ``NULL``: matches nothing)."""
    lists = {k for k, v in params.items() if isinstance(v, list | tuple)}
    if not lists:
        return sql, dict(params)
    out = {k: v for k, v in params.items() if k not in lists}

    def expand(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in lists:
            return m.group(0)
        values = params[name]
        for i, v in enumerate(values):
            out[f"{name}_{i}"] = v
        return ", ".join(f":{name}_{i}" for i in range(len(values))) or "NULL"

    return _PARAM.sub(expand, sql), out


@lru_cache(maxsize=2048)  # the statements, and their IN lists of up to CHUNK values
def _text(sql: str) -> Any:
    """One ``text()`` object per statement: SQLAlchemy caches its compiled form by it."""
    import sqlalchemy as sa

    return sa.text(sql)


def _execute(conn: Conn, sql: str, params: Mapping[str, Any] | None) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    """(column names, rows as plain tuples)."""
    sql, bound = _expanded(sql, params or {})
    if isinstance(conn, SqliteReader):
        cur = conn.raw.execute(sql, bound)
        try:
            return tuple(d[0] for d in cur.description or ()), cur.fetchall()
        finally:
            cur.close()
    result = conn.execute(_text(sql), bound)
    try:
        # The driver's own tuples: a Row object per row cost more than the query (runs list).
        return tuple(result.keys()), list(result.cursor.fetchall()) if result.returns_rows else []
    finally:
        result.close()


@cache
def _row_type(columns: tuple[str, ...]) -> Any:
    cls = namedtuple("Row", columns)  # type: ignore[misc]  # columns known only at run time
    cls._mapping = property(lambda self: self._asdict())  # type: ignore[attr-defined]  # as SQLAlchemy rows have it
    return cls


def rows(conn: Conn, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
    """Every row, as named tuples (Boolean columns as bool)."""
    columns, data = _execute(conn, sql, params)
    make = _row_type(columns)._make
    flags = [i for i, c in enumerate(columns) if c in BOOLEAN_COLUMNS]
    if not flags:
        return [make(r) for r in data]
    out = []
    for r in data:
        values = list(r)
        for i in flags:
            if values[i] is not None:
                values[i] = bool(values[i])
        out.append(make(values))
    return out


def first(conn: Conn, sql: str, params: Mapping[str, Any] | None = None) -> Row | None:
    found = rows(conn, sql, params)
    return found[0] if found else None


def scalar(conn: Conn, sql: str, params: Mapping[str, Any] | None = None) -> Any:
    """The first column of the first row (None when there is no row)."""
    _, data = _execute(conn, sql, params)
    return data[0][0] if data else None


def tuples(conn: Conn, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
    """Every row as the driver's plain tuple (no Boolean conversion): for listings of many rows."""
    return _execute(conn, sql, params)[1]


def values(conn: Conn, sql: str, params: Mapping[str, Any] | None = None) -> list[Any]:
    """The first column of every row."""
    return [r[0] for r in tuples(conn, sql, params)]
