"""A dataset version as a folder a training script can read, and as a COCO ground truth.

The folder is the version's files (``checkout``), and for a version snapshotted with
annotations LensVault also writes, from the version's own annotation tables:

- ``annotations/instances.json``: COCO, every image of the version, ``file_name`` relative to
  the folder (the image's path in the version), the image's tags both under ``tags`` and as
  top-level fields (``time_of_day``) when they do not clash with COCO's own;
- ``splits.json``: ``{"train": [file_name, ...], "val": [...], "test": [...]}``.

Writing them from the tables (instead of trusting a source file of the same name) means the
script sees exactly the annotations and splits the version records, also after a
``dataset fix``. Image ids are the version's own (lensvault.annotations.image_ids), the same
as in ``dataset export --format coco`` and ``VisionDataset``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["coco_ground_truth", "materialize"]

_COCO_IMAGE_KEYS = {"id", "file_name", "width", "height", "tags", "license", "coco_url", "flickr_url", "date_captured"}


def coco_ground_truth(ds, split: str | None = None) -> dict:
    """The COCO dict of a vision version (or of one split), with ``splits`` membership added."""
    from lensvault.annotations.image_ids import image_ids

    images = ds.images()
    anns = ds.annotations()
    cm = ds.class_map()
    rows = sorted(images.select(["path", "width", "height", "split", "tags"]).to_pylist(), key=lambda r: r["path"])
    id_of = dict(zip(images.column("path").to_pylist(), image_ids(images)))
    out_images: list[dict[str, Any]] = []
    splits: dict[str, list[str]] = {}
    for r in rows:
        if split is not None and r["split"] != split:
            continue
        tags = json.loads(r["tags"]) if r["tags"] else {}
        entry = {"id": id_of[r["path"]], "file_name": r["path"], "width": r["width"], "height": r["height"]}
        entry.update({k: v for k, v in tags.items() if k not in _COCO_IMAGE_KEYS})
        if tags:
            entry["tags"] = tags
        out_images.append(entry)
        splits.setdefault(r["split"] or "unassigned", []).append(r["path"])
    keep = {e["file_name"] for e in out_images}
    out_anns: list[dict[str, Any]] = []
    # Image labels are no boxes, nor are a masks import's ignore regions (as the COCO export leaves them out).
    cols = [a for a in anns.select(["image", "class_id", "x", "y", "w", "h", "iscrowd", "kind", "attributes"]).to_pylist()
            if a["kind"] != "label" and not (a["iscrowd"] and a["attributes"] == '{"ignore":true}')]
    for a in sorted(cols, key=lambda a: (id_of.get(a["image"], 0), a["class_id"], a["x"], a["y"])):
        # Every annotation of the version, zero-area boxes included, as `dataset export --format coco`
        # writes them; scoring leaves those out on both sides (evaluation.evaluate_detections).
        if a["image"] not in keep:
            continue
        out_anns.append({"id": len(out_anns) + 1, "image_id": id_of[a["image"]], "category_id": a["class_id"],
                         "bbox": [a["x"], a["y"], a["w"], a["h"]], "area": a["w"] * a["h"],
                         "iscrowd": int(bool(a["iscrowd"]))})
    categories = [{"id": cid, "name": name, "supercategory": ""} for cid, name in zip(cm.ids, cm.names)]
    return {"info": {"description": f"LensVault {ds.ref}" + (f" split {split}" if split else "")},
            "licenses": [], "categories": categories, "images": out_images, "annotations": out_anns,
            "splits": {k: sorted(v) for k, v in sorted(splits.items())}}


def materialize(ds, dest: Path, *, link="auto") -> Path:
    """Check the version out into ``dest`` and, for a vision version, add the COCO files."""
    dest = Path(dest)
    ds.checkout(dest, link=link)
    if ds.is_vision:
        gt = coco_ground_truth(ds)
        splits = gt.pop("splits")
        ann = dest / "annotations" / "instances.json"
        ann.parent.mkdir(parents=True, exist_ok=True)
        if ann.exists() or ann.is_symlink():
            os.unlink(ann)  # may be a read-only link into the store: replace, never write through
        ann.write_text(json.dumps(gt), encoding="utf-8")
        sp = dest / "splits.json"
        if sp.exists() or sp.is_symlink():
            os.unlink(sp)
        sp.write_text(json.dumps(splits, indent=1), encoding="utf-8")
    return dest
