"""Indexes for the lineage walks: runs by config and by what they reproduce; evaluations
by run and by model (found missing at 10,000 runs by the lineage benchmark)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

TABLES = ()


def upgrade(conn: Connection) -> None:
    for name, table, cols in (
        ("ix_runs_config", "runs", "config_id"),
        ("ix_runs_reproduces", "runs", "reproduces"),
        ("ix_evaluations_run", "evaluations", "run_id"),
        ("ix_evaluations_model", "evaluations", "model_name, model_version"),
    ):
        conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({cols})")
