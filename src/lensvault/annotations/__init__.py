"""The annotation layer: a normalized model of a vision dataset, importers, exporters and
validation. Pure: folders and files in, in-memory tables out (and back).

    load(src, format="auto", ...)        -> AnnotationSet
    export(aset, image_files, dest, ...) -> Path
    detect(src)                          -> Detection(format, description)
    validate(aset)                       -> list[Finding]

Not imported by ``lensvault/__init__`` — it pulls in pyarrow.
"""

from __future__ import annotations

from lensvault.annotations.detect import Detection, detect
from lensvault.annotations.exporters import EXPORT_FORMATS, export
from lensvault.annotations.importers import FORMATS, load
from lensvault.annotations.model import (
    ANNOTATION_SCHEMA,
    IMAGE_SCHEMA,
    KINDS,
    AnnotationColumns,
    AnnotationSet,
    ClassMap,
    Finding,
    ImageColumns,
    canonical_json,
)
from lensvault.annotations.validate import validate

__all__ = [
    "ANNOTATION_SCHEMA",
    "AnnotationColumns",
    "AnnotationSet",
    "ClassMap",
    "Detection",
    "EXPORT_FORMATS",
    "FORMATS",
    "Finding",
    "IMAGE_SCHEMA",
    "ImageColumns",
    "KINDS",
    "canonical_json",
    "detect",
    "export",
    "load",
    "validate",
]
