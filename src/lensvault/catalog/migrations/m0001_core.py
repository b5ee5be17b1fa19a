"""Core tables: snapshots, dataset versions, object refs, events.

The tables are written out here, as this step creates them, instead of imported from
``catalog/schema.py``: a later change to a live table must not change what this step does
(a new column is a new step). ``tests/core/test_schema.py`` checks that the steps together
still make what the live definitions describe.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lensvault.catalog.triggers import write_once

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection

TABLES = ("snapshots", "dataset_versions", "object_refs", "events")
APPEND_ONLY = ("dataset_versions", "events", "snapshots")


def _tables() -> tuple[sa.Table, ...]:
    import sqlalchemy as sa

    md = sa.MetaData()
    snapshots = sa.Table(
        "snapshots", md,
        sa.Column("snapshot_id", sa.String(64), primary_key=True),
        sa.Column("snapshot_oid", sa.String(64), nullable=False),
        sa.Column("files_oid", sa.String(64), nullable=False),
        sa.Column("file_count", sa.BigInteger, nullable=False),
        sa.Column("total_bytes", sa.BigInteger, nullable=False),
        sa.Column("annotations_oid", sa.String(64)),
        sa.Column("images_oid", sa.String(64)),
        sa.Column("created_at", sa.String(32), nullable=False),
    )
    dataset_versions = sa.Table(
        "dataset_versions", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("major", sa.Integer, nullable=False),
        sa.Column("minor", sa.Integer, nullable=False),
        sa.Column("patch", sa.Integer, nullable=False),
        sa.Column("prerelease", sa.String(100), nullable=False, server_default=""),
        sa.Column("snapshot_id", sa.String(64), sa.ForeignKey("snapshots.snapshot_id"), nullable=False),
        sa.Column("manifest_oid", sa.String(64), nullable=False),
        sa.Column("parent", sa.String(100)),
        sa.Column("file_count", sa.BigInteger, nullable=False),
        sa.Column("total_bytes", sa.BigInteger, nullable=False),
        sa.Column("notes", sa.Text, nullable=False, server_default=""),
        sa.Column("bump", sa.String(16)),
        sa.Column("forced", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("changelog", sa.Text),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.UniqueConstraint("name", "version", name="uq_dataset_version"),
    )
    object_refs = sa.Table(
        "object_refs", md,
        sa.Column("owner_kind", sa.String(32), primary_key=True),
        sa.Column("owner_id", sa.String(200), primary_key=True),
        sa.Column("oid", sa.String(64), primary_key=True),
    )
    events = sa.Table(
        "events", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject_kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("before", sa.Text),
        sa.Column("after", sa.Text),
        sa.Index("ix_events_subject", "subject"),
        sa.Index("ix_events_at", "at"),
    )
    return snapshots, dataset_versions, object_refs, events


def upgrade(conn: Connection) -> None:
    for table in _tables():
        table.create(conn, checkfirst=True)
    for name in APPEND_ONLY:
        write_once(conn, name)
