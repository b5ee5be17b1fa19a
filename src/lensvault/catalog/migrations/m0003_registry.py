"""Model registry: versions, files, aliases, alias moves."""

from __future__ import annotations

from lensvault.catalog import registry_schema as s
from lensvault.catalog.triggers import write_once

TABLES = ("model_versions", "model_files", "aliases", "alias_moves")


def upgrade(conn) -> None:
    for table in (s.model_versions, s.model_files, s.aliases, s.alias_moves):
        table.create(conn, checkfirst=True)
    for name in s.WRITE_ONCE:
        write_once(conn, name)
