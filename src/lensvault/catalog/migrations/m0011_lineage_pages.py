"""What depends on a dataset version or a config, newest first, a page at a time: indexes on
(dataset, started_at, run_id), (config_id, started_at, run_id) and evaluations' (dataset,
created_at, eval_id). ``lineage … --down`` of a version 20,000 runs used listed every run
(0.6–2.7 s, benchmarks/bench_catalog_scale.py); it now shows the newest page, read from these
indexes without sorting, and counts the rest."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

TABLES = ()


def upgrade(conn: Connection) -> None:
    for name, table, cols in (
        ("ix_runs_dataset_started", "runs", "dataset, started_at, run_id"),
        ("ix_runs_config_started", "runs", "config_id, started_at, run_id"),
        ("ix_evaluations_dataset_created", "evaluations", "dataset, created_at, eval_id"),
    ):
        conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({cols})")
