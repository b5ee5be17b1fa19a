"""Model registry: versions, files, aliases, alias moves.

Written out as this step creates them (see m0001_core).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lensvault.catalog.triggers import write_once

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection

TABLES = ("model_versions", "model_files", "aliases", "alias_moves")
WRITE_ONCE = ("model_versions", "model_files", "alias_moves")


def _tables() -> tuple[sa.Table, ...]:
    import sqlalchemy as sa

    md = sa.MetaData()
    model_versions = sa.Table(
        "model_versions", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("major", sa.Integer, nullable=False),
        sa.Column("minor", sa.Integer, nullable=False),
        sa.Column("patch", sa.Integer, nullable=False),
        sa.Column("prerelease", sa.String(100), nullable=False, server_default=""),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("bundle_oid", sa.String(64), nullable=False),
        sa.Column("dataset", sa.String(200)),
        sa.Column("config_id", sa.String(64)),
        sa.Column("code_commit", sa.String(64)),
        sa.Column("metrics", sa.Text),
        sa.Column("release_notes", sa.Text, nullable=False),
        sa.Column("bump", sa.String(16)),
        sa.Column("forced", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("dirty", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.UniqueConstraint("name", "version", name="uq_model_version"),
        sa.Index("ix_model_versions_run", "run_id"),
        sa.Index("ix_model_versions_dataset", "dataset"),
    )
    model_files = sa.Table(
        "model_files", md,
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("version", sa.String(100), primary_key=True),
        sa.Column("file", sa.String(300), primary_key=True),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
    )
    aliases = sa.Table(
        "aliases", md,
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("alias", sa.String(64), primary_key=True),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
        sa.Column("move_id", sa.Integer, nullable=False),
    )
    alias_moves = sa.Table(
        "alias_moves", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("alias", sa.String(64), nullable=False),
        sa.Column("from_version", sa.String(100)),
        sa.Column("to_version", sa.String(100), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Index("ix_alias_moves_name", "name", "alias"),
    )
    return model_versions, model_files, aliases, alias_moves


def upgrade(conn: Connection) -> None:
    for table in _tables():
        table.create(conn, checkfirst=True)
    for name in WRITE_ONCE:
        write_once(conn, name)
