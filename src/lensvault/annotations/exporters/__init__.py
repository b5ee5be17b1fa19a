"""Exporters: the normalized model back to a training format on disk."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lensvault.annotations.model import AnnotationSet
from lensvault.errors import UsageError

__all__ = ["EXPORT_FORMATS", "export"]

EXPORT_FORMATS = {
    "coco": "lensvault.annotations.exporters.coco",
    "yolo": "lensvault.annotations.exporters.yolo",
    "voc": "lensvault.annotations.exporters.voc",
    "imagefolder": "lensvault.annotations.exporters.imagefolder",
    "labels": "lensvault.annotations.exporters.labels",
    "labelme": "lensvault.annotations.exporters.labelme",
    "masks": "lensvault.annotations.exporters.masks",
}


def export(aset: AnnotationSet, image_files: Mapping[str, Any], dest: Path, *, format: str,
           split: str | None = None, link: Callable[[Any, Path], None] | None = None) -> Path:
    """Write ``aset`` (or one ``split`` of it) to ``dest`` in ``format``; return ``dest``.

    ``image_files`` maps each model image path to a real file to copy, or, with ``link``,
    to whatever ``link(source, dst)`` places (a dataset export: the image's store object,
    copied or linked). Images missing from the mapping get annotations but no file.
    """
    fmt = format.lower()
    if fmt not in EXPORT_FORMATS:
        raise UsageError(f"cannot export to {format!r}", where="--format",
                         fix=f"use one of: {', '.join(sorted(EXPORT_FORMATS))}")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    module = importlib.import_module(EXPORT_FORMATS[fmt])
    written: Path = module.export(aset, image_files, dest, split=split, link=link)
    return written
