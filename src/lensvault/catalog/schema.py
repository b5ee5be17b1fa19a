"""Core tables. Each domain that adds tables declares them on the same ``metadata``.

These are the live definitions, which queries use (``catalog/repos/``): together they are
what a fully migrated catalog has. The migrations create tables from their own frozen
copies (``catalog/migrations/``), so changing a table here changes no migration: add a step.

Timestamps are ISO-8601 UTC strings with microseconds: they sort as text and
mean the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

schema_migrations = sa.Table(
    "schema_migrations",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("applied_at", sa.String(32), nullable=False),
)

snapshots = sa.Table(
    "snapshots",
    metadata,
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
    "dataset_versions",
    metadata,
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

# Objects that something other than a dataset version keeps alive (run
# artifacts, model bundles). gc unions these with every version's files.
object_refs = sa.Table(
    "object_refs",
    metadata,
    sa.Column("owner_kind", sa.String(32), primary_key=True),
    sa.Column("owner_id", sa.String(200), primary_key=True),
    sa.Column("oid", sa.String(64), primary_key=True),
)

events = sa.Table(
    "events",
    metadata,
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

# The catalog's identity: one row, written when the catalog is created (by `init`, or by
# `catalog rebuild`, which keeps the id). Its ledger in the store is named by it, and a
# vault checks it on open, so a missing, emptied or foreign catalog is never taken for its own.
catalog_info = sa.Table(
    "catalog_info",
    metadata,
    sa.Column("catalog_id", sa.String(64), primary_key=True),
    sa.Column("created_at", sa.String(32), nullable=False),
)
