"""API tokens for ``lensvault serve``: who a request acts as, and with which role.

Written out as this step creates it (see m0001_core). Mutable on purpose (a revoke sets
``revoked_at``), so no write-once triggers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

TABLES = ("api_tokens",)


def upgrade(conn: Connection) -> None:
    import sqlalchemy as sa

    sa.Table(
        "api_tokens", sa.MetaData(),
        sa.Column("token_id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("user", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("revoked_at", sa.String(32)),
        sa.Column("revoked_by", sa.String(200)),
        sa.UniqueConstraint("name", name="uq_api_token_name"),
    ).create(conn, checkfirst=True)
