"""The three parts of a vision dataset version, as one value for diff and checks."""

from __future__ import annotations

from typing import NamedTuple


class VisionTables(NamedTuple):
    ref: str
    images: object  # pyarrow.Table: IMAGE_SCHEMA + sha256
    annotations: object  # pyarrow.Table: ANNOTATION_SCHEMA
    classes: object  # lensvault.annotations.model.ClassMap
