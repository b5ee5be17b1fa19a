"""Core tables: snapshots, dataset versions, object refs, events."""

from __future__ import annotations

from lensvault.catalog import schema
from lensvault.catalog.triggers import write_once

TABLES = ("snapshots", "dataset_versions", "object_refs", "events")


def upgrade(conn) -> None:
    for table in (schema.snapshots, schema.dataset_versions, schema.object_refs, schema.events):
        table.create(conn, checkfirst=True)
    for name in schema.APPEND_ONLY:
        write_once(conn, name)
