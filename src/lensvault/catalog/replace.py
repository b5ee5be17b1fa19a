"""What ``catalog rebuild`` asks of the database itself: row counts of a catalog it may
replace, the old tables moved aside on PostgreSQL, sequences moved past replayed ids, and a
SQLite file made self-contained before it is renamed into place (lensvault/rebuild.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy.engine import Connection, Engine

__all__ = ["checkpoint_sqlite", "move_tables_aside", "restart_id_sequences", "row_counts"]


def row_counts(conn: Connection, tables: Iterable[str]) -> dict[str, int]:
    return {t: int(conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar() or 0) for t in tables}


def move_tables_aside(conn: Connection, tables: Iterable[str], schema: str) -> list[str]:
    """PostgreSQL: move those of ``tables`` that exist into a new schema ``schema``, inside the
    caller's transaction (DDL is transactional there: other sessions see the old catalog or
    the new one); the tables moved, sorted."""
    present = {r[0] for r in conn.exec_driver_sql(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")} & set(tables)
    if present:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        for t in sorted(present):
            conn.exec_driver_sql(f'ALTER TABLE "{t}" SET SCHEMA "{schema}"')
    return sorted(present)


def restart_id_sequences(conn: Connection, tables: Iterable[str]) -> None:
    """PostgreSQL: the next id of each table's ``id`` column follows the highest id inserted
    (rows were replayed with their ids)."""
    for table in tables:
        conn.exec_driver_sql(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"COALESCE((SELECT max(id) FROM {table}), 0) + 1, false)")


def checkpoint_sqlite(engine: Engine) -> None:
    """Fold the write-ahead log into the database file (one self-contained file)."""
    raw = engine.raw_connection()
    try:
        driver = raw.driver_connection
        assert driver is not None
        driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.close()
