"""API tokens and browser sessions of ``lensvault serve`` (the live definitions; migrations
m0008_api_tokens, m0009_api_sessions).

Only the sha256 of a token's secret is kept: the secret is shown once, when it is made.
A token is revoked by setting ``revoked_at``, never deleted, so the audit trail can still
name the token behind an old event.
"""

from __future__ import annotations

import sqlalchemy as sa

from lensvault.catalog.schema import metadata

api_tokens = sa.Table(
    "api_tokens",
    metadata,
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
)

# Browser sessions of the web UI (migration m0009_api_sessions): the cookie holds a random
# session id; only its sha256 is kept, with the token it stands for and when it ends. Not
# ledger records: a session is a login, not a fact (after `catalog rebuild`, log in again).
api_sessions = sa.Table(
    "api_sessions",
    metadata,
    sa.Column("session_sha256", sa.String(64), primary_key=True),
    sa.Column("token_id", sa.String(32), nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("expires_at", sa.String(32), nullable=False),
)
