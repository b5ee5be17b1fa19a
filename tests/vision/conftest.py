"""Real BCCD data as VisionTables, and helpers that edit copies of its tables."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pytest

from lensvault.datasets.vision_tables import VisionTables

BCCD = Path(__file__).resolve().parents[1] / "data" / "bccd" / "BCCD"  # a licensed subset in tests/data


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def bccd_root() -> Path:
    return BCCD


@pytest.fixture(scope="session")
def bccd(bccd_root) -> VisionTables:
    """bccd@1.0.0: the VOC import with a sha256 per image, as a vision version stores it."""
    from lensvault.annotations import load

    aset = load(bccd_root, format="voc")
    shas = [sha256_file(bccd_root / p) for p in aset.images.column("path").to_pylist()]
    images = aset.images.append_column("sha256", pa.array(shas, pa.string()))
    return VisionTables("bccd@1.0.0", images, aset.annotations, aset.classes)


def set_column(table: pa.Table, name: str, values) -> pa.Table:
    i = table.schema.get_field_index(name)
    field = table.schema.field(i)
    return table.set_column(i, field, pa.array(values, field.type))


def edit_rows(table: pa.Table, name: str, rows, fn) -> pa.Table:
    """A copy of ``table`` with ``fn(old)`` written into column ``name`` at ``rows``."""
    values = table.column(name).to_pylist()
    for r in rows:
        values[r] = fn(values[r])
    return set_column(table, name, values)


def rows_of_image(tables: VisionTables, path: str) -> list[int]:
    return [i for i, p in enumerate(tables.annotations.column("image").to_pylist()) if p == path]


def image_paths(tables: VisionTables, split: str | None = None) -> list[str]:
    paths = tables.images.column("path").to_pylist()
    splits = tables.images.column("split").to_pylist()
    return [p for p, s in zip(paths, splits) if split is None or s == split]


def version(tables: VisionTables, ref: str = "bccd@1.0.1", **parts) -> VisionTables:
    return tables._replace(ref=ref, **parts)
