"""Runs newest first, a page at a time: an index on (started_at, run_id), the order ``runs list``
and the server's run list read in. With only ``started_at`` indexed, SQLite sorted every run to
return the newest 50 (0.5 s at 100,000 runs; found by benchmarks/bench_catalog_scale.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

TABLES = ()


def upgrade(conn: Connection) -> None:
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_runs_started_run ON runs (started_at, run_id)")
