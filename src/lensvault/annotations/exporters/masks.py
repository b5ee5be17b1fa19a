"""``--format masks``: the images at their paths, one class-index PNG per image under ``masks/``
and ``dataset_meta.json`` — what the masks importer reads back.

A pixel is the class of the last mask, RLE or polygon annotation covering it (in annotation
order, as semantic evaluation paints the ground truth), the ignore index on crowd regions (the
ignore pixels of a masks import), else the background class the version recorded (else one
named background), else the ignore index. ``dataset_meta.json`` holds ``label_map`` (id → name),
``background_label`` and ``ignore_index``. The mask of ``images/a.jpg`` is ``masks/a.png``; of
``other/b.jpg``, ``masks/other/b.png``. Masks are 8-bit, or 16-bit when an id or the ignore index
is above 255. Boxes, keypoints and image labels carry no pixels and are not written. Splits are
``ImageSets/Segmentation/<split>.txt`` (VOC's lists: image stems, or paths without suffix when two
images share a stem), which the importer reads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any, TextIO

from lensvault.annotations.exporters._files import Link, Selection, derived, place, repeated
from lensvault.annotations.model import AnnotationSet
from lensvault.errors import UsageError

__all__ = ["export"]

_IMAGE_DIRS = ("images", "JPEGImages", "imgs")  # the importer's image folders (masks._IMAGE_DIRS)
_PIXEL_KINDS = ["mask", "polygon"]  # (any annotation with a polygon or an RLE paints too)


def mask_path(image: str) -> str:
    parts = PurePosixPath(image).parts
    rest = parts[1:] if len(parts) > 1 and parts[0] in _IMAGE_DIRS else parts
    return str(PurePosixPath("masks", *rest).with_suffix(".png"))


def export(aset: AnnotationSet, image_files: Mapping[str, Any], dest: Path, *, split: str | None,
           link: Link | None = None) -> Path:
    import numpy as np
    from PIL import Image

    from lensvault.annotations.painting import background_id, rasterize_ground_truth

    ids, names = list(aset.classes.ids), list(aset.classes.names)
    if sorted(ids) != list(range(len(ids))):
        raise UsageError(f"the class ids are {ids[:10]}, not 0..{len(ids) - 1}: a mask pixel holds a class id and "
                         "dataset_meta.json numbers classes from 0", where="--format masks",
                         fix="export as coco (its category ids may have gaps)")
    anns = aset.annotations
    if anns.num_rows:
        import pyarrow as pa
        import pyarrow.compute as pc

        painted = pc.or_(pc.is_in(anns["kind"], value_set=pa.array(_PIXEL_KINDS)),
                         pc.or_(pc.invert(pc.is_null(anns["polygon"])), pc.invert(pc.is_null(anns["rle"]))))
        if not pc.any(painted).as_py():
            kinds = sorted(set(anns["kind"].to_pylist()))
            raise UsageError(f"none of the {anns.num_rows} annotations carry pixels (kinds: {', '.join(kinds)}): a masks "
                             "export would write every image as background, dropping them all", where="--format masks",
                             fix="export boxes, keypoints and labels as coco (or voc, yolo, labels)")
    meta = aset.masks or {}
    ignore = int(meta.get("ignore_index") or 255)
    bg = meta["background_class"] if "background_class" in meta else background_id(ids, names)
    fill = ignore if bg is None else bg
    deep = max([*ids, ignore]) > 255
    import contextlib

    sel = Selection(aset, split, ignore_regions=True)
    # VOC's split lists: one image per line, by stem — by path without suffix where stems repeat,
    # so that no image is put in another's split.
    unique = not repeated(derived(sel.column("path"), lambda p: PurePosixPath(p).stem))
    folder = dest / "ImageSets" / "Segmentation"
    with contextlib.ExitStack() as files:
        members: dict[str, TextIO] = {}  # split → its list, written as the images come
        for chunk in sel.chunks():
            for im, rows in chunk:
                place(im["path"], dest / im["path"], image_files, link)
                if im["split"]:
                    if im["split"] not in members:
                        folder.mkdir(parents=True, exist_ok=True)
                        members[im["split"]] = files.enter_context(
                            open(folder / f"{im['split']}.txt", "w", encoding="utf-8", newline=""))
                    path = PurePosixPath(im["path"])
                    members[im["split"]].write(f"{path.stem if unique else path.with_suffix('')}\n")
                if im["width"] <= 0 or im["height"] <= 0:
                    continue
                pixels = rasterize_ground_truth(im, rows, fill, ignore)
                out = dest / mask_path(im["path"])
                out.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels.astype(np.uint16 if deep else np.uint8)).save(out)
    doc: dict[str, Any] = {"label_map": {str(i): n for i, n in sorted(zip(ids, names))}, "ignore_index": ignore}
    if bg is not None:
        doc["background_label"] = str(bg)
    (dest / "dataset_meta.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")
    return dest

