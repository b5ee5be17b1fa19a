"""The catalog's identity (one row; the id itself is inserted by ``Catalog.migrate``).

Written out as this step creates it (see m0001_core).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lensvault.catalog.triggers import write_once

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

TABLES = ("catalog_info",)


def upgrade(conn: Connection) -> None:
    import sqlalchemy as sa

    catalog_info = sa.Table(
        "catalog_info", sa.MetaData(),
        sa.Column("catalog_id", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.String(32), nullable=False),
    )
    catalog_info.create(conn, checkfirst=True)
    write_once(conn, "catalog_info")
