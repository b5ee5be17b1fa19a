"""``--format imagefolder``: SPLIT/CLASS/image (CLASS/image without splits), one class per image."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lensvault.annotations.exporters._files import CHUNK_IMAGES, FlatNames, Link, Selection, place
from lensvault.annotations.model import AnnotationSet
from lensvault.errors import UsageError

__all__ = ["export"]


def export(aset: AnnotationSet, image_files: Mapping[str, Any], dest: Path, *, split: str | None,
           link: Link | None = None) -> Path:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    sel = Selection(aset, split)
    n = len(sel)
    # Each image's distinct label classes: how many, and the lowest (its folder's class).
    is_label = pc.equal(sel.annotation_column("kind"), "label").to_numpy(zero_copy_only=False)
    rows = sel.annotation_image_rows()[is_label]
    classes = sel.annotation_column("class_id").to_numpy(zero_copy_only=False)[is_label].astype(np.int64)
    order = np.lexsort((classes, rows))
    rows, classes = rows[order], classes[order]
    distinct = np.ones(len(rows), dtype=bool)
    distinct[1:] = (rows[1:] != rows[:-1]) | (classes[1:] != classes[:-1])
    count = np.bincount(rows[distinct], minlength=n)
    paths = sel.column("path")
    for bad, what in ((count > 1, "have more than one label"), (count == 0, "have no image label")):
        if bad.any():
            found = sorted(paths.filter(pa.array(bad)).to_pylist())
            raise UsageError(f"{len(found)} image(s) {what}, which an ImageFolder cannot hold: "
                             + ", ".join(found[:5]) + (f" … and {len(found) - 5} more" if len(found) > 5 else ""),
                             where="--format imagefolder",
                             fix="export --format labels (a path,label CSV beside the images) instead")
    lowest = classes[np.searchsorted(rows, np.arange(n))]  # (every image has a label now)
    splits = sel.column("split")
    parts = []
    for lo in range(0, n, CHUNK_IMAGES):
        part = [f"{s}/{aset.classes.name_of(int(c))}" if s else aset.classes.name_of(int(c)) for s, c in
                zip(splits.slice(lo, CHUNK_IMAGES).to_pylist(), lowest[lo:lo + CHUNK_IMAGES].tolist())]
        parts.append(pa.array(part, pa.string()))
    folders = pa.chunked_array(parts, pa.string()).combine_chunks()
    flat = FlatNames(paths, folders)
    # A folder's images together, folders in the order they first appear (the order files are placed in).
    walk = np.argsort(folders.dictionary_encode().indices.to_numpy(zero_copy_only=False), kind="stable")
    for chunk in sel.chunks(walk):
        for im, anns in chunk:
            name = aset.classes.name_of(min(a["class_id"] for a in anns if a["kind"] == "label"))
            folder = f"{im['split']}/{name}" if im["split"] else name
            place(im["path"], dest / folder / flat(im["path"], folder), image_files, link)
    return dest
