"""Serialize writers of one name (a model's registrations, an alias's moves) inside their transaction.

SQLite needs nothing: every write transaction starts with BEGIN IMMEDIATE, so writers
already run one at a time. PostgreSQL runs them concurrently under READ COMMITTED, and
``SELECT … FOR UPDATE`` cannot lock a row that does not exist yet (the first promotion
of an alias, the first version of a model), so we take a transaction-scoped advisory
lock on the name instead; it is released at COMMIT or ROLLBACK.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = ["lock_migrations", "lock_name"]

# The advisory lock key that migrations (and a rebuild replacing the tables) hold.
_MIGRATIONS = 7428001


def lock_name(conn: Connection, *parts: str) -> None:
    """Hold a lock on ``parts`` (e.g. ``"model", name``) until the transaction ends."""
    if conn.dialect.name != "postgresql":
        return
    digest = hashlib.sha256("\x00".join(("lensvault.registry", *parts)).encode()).digest()
    key = int.from_bytes(digest[:8], "big", signed=True)
    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({key})")


def lock_migrations(conn: Connection) -> None:
    """PostgreSQL: hold the migration lock until the transaction ends, so two processes
    cannot create or replace the catalog's tables at once (SQLite: BEGIN IMMEDIATE does)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATIONS})")
