"""Browser sessions of ``lensvault serve``: a random session id's hash → the token it stands for.

Written out as this step creates it (see m0001_core). Rows come and go (login, logout,
expiry), so no write-once triggers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

TABLES = ("api_sessions",)


def upgrade(conn: Connection) -> None:
    import sqlalchemy as sa

    sa.Table(
        "api_sessions", sa.MetaData(),
        sa.Column("session_sha256", sa.String(64), primary_key=True),
        sa.Column("token_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("expires_at", sa.String(32), nullable=False),
    ).create(conn, checkfirst=True)
