"""``--format imagefolder``: SPLIT/CLASS/image (CLASS/image without splits), one class per image."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lensvault.annotations.exporters._files import Link, flat_names, place, select
from lensvault.annotations.model import AnnotationSet
from lensvault.errors import UsageError

__all__ = ["export"]


def export(aset: AnnotationSet, image_files: Mapping[str, Any], dest: Path, *, split: str | None,
           link: Link | None = None) -> Path:
    images, by_image = select(aset, split)
    labels = {im["path"]: sorted({a["class_id"] for a in by_image[im["path"]] if a["kind"] == "label"})
              for im in images}
    multi = sorted(p for p, ids in labels.items() if len(ids) > 1)
    unlabeled = sorted(p for p, ids in labels.items() if not ids)
    for bad, what in ((multi, "have more than one label"), (unlabeled, "have no image label")):
        if bad:
            raise UsageError(f"{len(bad)} image(s) {what}, which an ImageFolder cannot hold: "
                             + ", ".join(bad[:5]) + (f" … and {len(bad) - 5} more" if len(bad) > 5 else ""),
                             where="--format imagefolder",
                             fix="export --format labels (a path,label CSV beside the images) instead")
    folders: dict[str, list[str]] = {}
    for im in images:
        name = aset.classes.name_of(labels[im["path"]][0])
        folder = f"{im['split']}/{name}" if im["split"] else name
        folders.setdefault(folder, []).append(im["path"])
    for folder, paths in folders.items():
        for path, file_name in flat_names(paths).items():
            place(path, dest / folder / file_name, image_files, link)
    return dest
