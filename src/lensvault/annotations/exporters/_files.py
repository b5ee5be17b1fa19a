"""Selecting rows and placing image files, shared by the exporters."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from lensvault.annotations.model import AnnotationRow, AnnotationSet, ImageRow

Link = Callable[[Any, Path], None]


IGNORE_REGION = '{"ignore":true}'  # the attributes of a masks import's ignore pixels (importers.masks)


def select(aset: AnnotationSet, split: str | None, *, ignore_regions: bool = False
           ) -> tuple[list[ImageRow], dict[str, list[AnnotationRow]]]:
    """Image rows (optionally one split) and their annotation rows grouped by image path. The
    ignore regions of a masks import are no objects: left out unless ``ignore_regions`` (the
    masks export paints them the ignore index)."""
    images: list[ImageRow] = aset.images.to_pylist()
    if split is not None:
        images = [im for im in images if im["split"] == split]
    wanted = {im["path"] for im in images}
    by_image: dict[str, list[AnnotationRow]] = {p: [] for p in wanted}
    rows: list[AnnotationRow] = aset.annotations.to_pylist()
    for row in rows:
        if row["image"] in by_image and (ignore_regions or row["attributes"] != IGNORE_REGION or not row["iscrowd"]):
            by_image[row["image"]].append(row)
    for image_rows in by_image.values():
        image_rows.sort(key=lambda r: r["index"])
    return images, by_image


def place(key: str, dst: Path, image_files: Mapping[str, Any], link: Link | None) -> bool:
    """Copy (or ``link``) the image behind ``key`` to ``dst``; False if we have no file.

    ``link`` gets the mapping's value as it is (a dataset export maps to store objects)."""
    src = image_files.get(key)
    if src is None:
        return False
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists() or dst.is_symlink():
        dst.unlink()
    if link is not None:
        link(src, dst)
    else:
        shutil.copyfile(src, dst)
    return True


def flat_names(paths: list[str]) -> dict[str, str]:
    """Path → file name for formats with one image folder; a name used by two folders is
    made unique from its folders (``train/a.jpg`` → ``train__a.jpg``)."""
    counts: dict[str, int] = {}
    for p in paths:
        name = PurePosixPath(p).name
        counts[name] = counts.get(name, 0) + 1
    return {p: (PurePosixPath(p).name if counts[PurePosixPath(p).name] == 1 else p.replace("/", "__"))
            for p in paths}


def attrs(text: str) -> dict[str, Any]:
    """An ``attributes``/``tags`` cell: a JSON object of whatever the source wrote."""
    value: dict[str, Any] = json.loads(text) if text and text != "{}" else {}
    return value


def num(value: float) -> str:
    """Shortest exact text: ``12`` for whole numbers, ``repr`` otherwise (round-trips)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))
