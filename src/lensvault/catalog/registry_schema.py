"""Tables of the model registry: versions, their files, aliases and alias moves.

The live definitions, which queries use (``catalog/repos/``); the migrations create them
from their own frozen copies (``catalog/migrations/``).
"""

from __future__ import annotations

import sqlalchemy as sa

from lensvault.catalog.schema import metadata

model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("version", sa.String(100), nullable=False),
    sa.Column("major", sa.Integer, nullable=False),
    sa.Column("minor", sa.Integer, nullable=False),
    sa.Column("patch", sa.Integer, nullable=False),
    sa.Column("prerelease", sa.String(100), nullable=False, server_default=""),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("bundle_oid", sa.String(64), nullable=False),  # the bundle manifest (JSON) in the store
    sa.Column("dataset", sa.String(200)),
    sa.Column("config_id", sa.String(64)),
    sa.Column("code_commit", sa.String(64)),
    sa.Column("metrics", sa.Text),  # JSON
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
    "model_files",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("version", sa.String(100), primary_key=True),
    sa.Column("file", sa.String(300), primary_key=True),
    sa.Column("role", sa.String(32), nullable=False),  # weights | labelmap | preprocess | postprocess | metrics | notes
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
)

# The one mutable table: where an alias points now. Every move is also a row in
# alias_moves (append-only), written in the same transaction.
aliases = sa.Table(
    "aliases",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("alias", sa.String(64), primary_key=True),
    sa.Column("version", sa.String(100), nullable=False),
    sa.Column("updated_at", sa.String(32), nullable=False),
    sa.Column("move_id", sa.Integer, nullable=False),  # the alias_moves row that put it here
)

alias_moves = sa.Table(
    "alias_moves",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("alias", sa.String(64), nullable=False),
    sa.Column("from_version", sa.String(100)),
    sa.Column("to_version", sa.String(100), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),  # promote | rollback
    sa.Column("reason", sa.Text),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("at", sa.String(32), nullable=False),
    sa.Index("ix_alias_moves_name", "name", "alias"),
)
