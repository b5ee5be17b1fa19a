"""The catalog's identity (one row; the id itself is inserted by ``Catalog.migrate``)."""

from __future__ import annotations

from lensvault.catalog import schema
from lensvault.catalog.triggers import write_once

TABLES = ("catalog_info",)


def upgrade(conn) -> None:
    schema.catalog_info.create(conn, checkfirst=True)
    write_once(conn, "catalog_info")
