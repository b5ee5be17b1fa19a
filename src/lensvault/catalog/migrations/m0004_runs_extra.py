"""Latest metric value per run and key (for fast run listings).

Written out as this step creates it (see m0001_core).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

TABLES = ("run_latest_metrics",)


def upgrade(conn: Connection) -> None:
    import sqlalchemy as sa

    md = sa.MetaData()
    # Only the key the foreign key names; m0002 created the table.
    sa.Table("runs", md, sa.Column("run_id", sa.String(64), primary_key=True))
    run_latest_metrics = sa.Table(
        "run_latest_metrics", md,
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id"), primary_key=True),
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("step", sa.BigInteger),
        sa.Column("at", sa.String(32), nullable=False),
    )
    run_latest_metrics.create(conn, checkfirst=True)
