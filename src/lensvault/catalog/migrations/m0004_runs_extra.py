"""Latest metric value per run and key (for fast run listings)."""

from __future__ import annotations

TABLES = ("run_latest_metrics",)


def upgrade(conn) -> None:
    from lensvault.runs.tables import run_latest_metrics

    run_latest_metrics.create(conn, checkfirst=True)
