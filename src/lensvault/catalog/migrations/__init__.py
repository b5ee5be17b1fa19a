"""Schema migrations as named, recorded steps, applied in list order.

A domain that needs tables adds a module here and one line to STEPS; its
``TABLES`` names the tables it creates (opening a catalog checks they all exist). A step
runs once per catalog, inside a transaction that holds the write lock, so two
processes opening a fresh catalog cannot both apply it.

A step writes out the tables it creates instead of importing the live definitions
(``catalog/schema.py``, ``runs_schema.py``, ``registry_schema.py``): what a step does must
not change when a live table does. A change to a table is a new step, plus the same change
in the live definition (``tests/core/test_schema.py`` compares the two on both databases).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterator

    from sqlalchemy.engine import Connection

STEPS: list[str] = [
    "m0001_core",
    "m0002_runs",
    "m0003_registry",
    "m0004_runs_extra",
    "m0005_indexes",
    "m0006_run_owner",
    "m0007_catalog_info",
    "m0008_api_tokens",
    "m0009_api_sessions",
    "m0010_runs_newest",
    "m0011_lineage_pages",
]


def create_record_table(conn: Connection) -> None:
    """``schema_migrations``, where the applied steps are recorded (before the first step runs)."""
    import sqlalchemy as sa

    sa.Table(
        "schema_migrations", sa.MetaData(),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("applied_at", sa.String(32), nullable=False),
    ).create(conn, checkfirst=True)


def load_steps() -> Iterator[tuple[str, Callable[[Connection], None]]]:
    for name in STEPS:
        module = importlib.import_module(f"lensvault.catalog.migrations.{name}")
        yield name, module.upgrade


def tables_of(applied: Collection[str]) -> set[str]:
    """The tables a catalog with these steps applied must have."""
    out: set[str] = set()
    for name in STEPS:
        if name in applied:
            out.update(getattr(importlib.import_module(f"lensvault.catalog.migrations.{name}"), "TABLES", ()))
    return out
