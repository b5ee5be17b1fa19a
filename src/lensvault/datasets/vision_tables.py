"""The three parts of a vision dataset version, as one value for diff and checks."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import pyarrow as pa

    from lensvault.annotations.model import ClassMap


class VisionTables(NamedTuple):
    ref: str
    images: pa.Table  # IMAGE_SCHEMA + sha256
    annotations: pa.Table  # ANNOTATION_SCHEMA
    classes: ClassMap
