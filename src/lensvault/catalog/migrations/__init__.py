"""Schema migrations as named, recorded steps, applied in list order.

A domain that needs tables adds a module here and one line to STEPS; its
``TABLES`` names the tables it creates (opening a catalog checks they all exist). A step
runs once per catalog, inside a transaction that holds the write lock, so two
processes opening a fresh catalog cannot both apply it.
"""

from __future__ import annotations

import importlib

STEPS: list[str] = [
    "m0001_core",
    "m0002_runs",
    "m0003_registry",
    "m0004_runs_extra",
    "m0005_indexes",
    "m0006_run_owner",
    "m0007_catalog_info",
]


def load_steps():
    for name in STEPS:
        module = importlib.import_module(f"lensvault.catalog.migrations.{name}")
        yield name, module.upgrade


def tables_of(applied) -> set[str]:
    """The tables a catalog with these steps applied must have."""
    out: set[str] = set()
    for name in STEPS:
        if name in applied:
            out.update(getattr(importlib.import_module(f"lensvault.catalog.migrations.{name}"), "TABLES", ()))
    return out
