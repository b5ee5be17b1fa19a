"""Write-once tables: the database itself refuses UPDATE and DELETE.

Enforcing it in SQL rather than in Python means a script that talks to the
catalog directly cannot rewrite history either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


def write_once(conn: Connection, table: str) -> None:
    dialect = conn.dialect.name
    if dialect == "sqlite":
        for op in ("UPDATE", "DELETE"):
            conn.exec_driver_sql(
                f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} rows are write-once'); END"
            )
    elif dialect == "postgresql":
        conn.exec_driver_sql(
            "CREATE OR REPLACE FUNCTION lensvault_write_once() RETURNS trigger AS $$ "
            "BEGIN RAISE EXCEPTION '%% rows are write-once', TG_TABLE_NAME; END; $$ LANGUAGE plpgsql"
        )
        conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_write_once ON {table}")
        conn.exec_driver_sql(
            f"CREATE TRIGGER {table}_write_once BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION lensvault_write_once()"
        )


def frozen_when_finished(conn: Connection, table: str, *, status_column: str, open_states: tuple[str, ...]) -> None:
    """Rows may change while open (a running run), never after; and never be deleted."""
    states = ", ".join(f"'{s}'" for s in open_states)
    dialect = conn.dialect.name
    if dialect == "sqlite":
        conn.exec_driver_sql(
            f"CREATE TRIGGER IF NOT EXISTS {table}_frozen BEFORE UPDATE ON {table} "
            f"WHEN OLD.{status_column} NOT IN ({states}) "
            f"BEGIN SELECT RAISE(ABORT, 'finished {table} rows are frozen'); END"
        )
        conn.exec_driver_sql(
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} rows are never deleted'); END"
        )
    elif dialect == "postgresql":
        conn.exec_driver_sql(
            f"CREATE OR REPLACE FUNCTION lensvault_{table}_frozen() RETURNS trigger AS $$ BEGIN "
            f"IF TG_OP = 'DELETE' OR OLD.{status_column} NOT IN ({states}) THEN "
            f"RAISE EXCEPTION 'finished {table} rows are frozen'; END IF; RETURN NEW; END; $$ LANGUAGE plpgsql"
        )
        conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_frozen ON {table}")
        conn.exec_driver_sql(
            f"CREATE TRIGGER {table}_frozen BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION lensvault_{table}_frozen()"
        )
