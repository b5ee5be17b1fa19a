"""Tables the runs domain adds on top of ``catalog/runs_schema.py`` (migration m0004_runs_extra)."""

from __future__ import annotations

import sqlalchemy as sa

from lensvault.catalog.schema import metadata

# The latest overall value of each metric of each run, kept as metrics are flushed, so
# listing 10,000 runs with their metrics reads 10,000 x keys rows instead of every point.
run_latest_metrics = sa.Table(
    "run_latest_metrics",
    metadata,
    sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id"), primary_key=True),
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("step", sa.BigInteger),
    sa.Column("at", sa.String(32), nullable=False),
)
