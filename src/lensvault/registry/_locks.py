"""Serialize writers of one model (registrations, alias moves) inside their transaction.

SQLite needs nothing: every write transaction starts with BEGIN IMMEDIATE, so writers
already run one at a time. PostgreSQL runs them concurrently under READ COMMITTED, and
``SELECT … FOR UPDATE`` cannot lock a row that does not exist yet (the first promotion
of an alias, the first version of a model), so we take a transaction-scoped advisory
lock on the name instead; it is released at COMMIT or ROLLBACK.
"""

from __future__ import annotations

import hashlib


def lock_name(conn, *parts: str) -> None:
    if conn.dialect.name != "postgresql":
        return
    digest = hashlib.sha256("\x00".join(("lensvault.registry", *parts)).encode()).digest()
    key = int.from_bytes(digest[:8], "big", signed=True)
    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({key})")
