"""Who owns a running run (host, pid, process start time), and why a run ended when its
owner did not end it (crashed, abandoned). See lensvault/runs/owner.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

COLUMNS = (("owner_host", "VARCHAR(255)"), ("owner_pid", "INTEGER"), ("owner_started", "VARCHAR(100)"),
           ("end_reason", "TEXT"))


def upgrade(conn: Connection) -> None:
    import sqlalchemy as sa

    # A catalog created after this step was written got the columns in m0002.
    have = {c["name"] for c in sa.inspect(conn).get_columns("runs")}
    for name, sql_type in COLUMNS:
        if name not in have:
            conn.exec_driver_sql(f"ALTER TABLE runs ADD COLUMN {name} {sql_type}")
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_runs_status ON runs (status)")
