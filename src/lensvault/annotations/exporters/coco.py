"""COCO export: ``annotations/instances_<split>.json`` (``instances_all.json`` for images
without a split) and the images at their original relative paths, so ``file_name`` is that
path and the importer finds it again. Image labels (kind ``label``) are no objects: an image's
are written as a list of class names in its entry, under the field they were imported from
(``--label-key``) or ``labels``, which ``--format coco --label-key`` reads back. Category ids are written as they are in the model, and
image ids are the version's own (lensvault.annotations.image_ids) whatever ``split`` is chosen:
predictions made on an export evaluate against the version with the same ids."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, NotRequired, TypedDict

from lensvault.annotations.exporters._files import Link, Selection, attrs, place
from lensvault.annotations.model import AnnotationRow, AnnotationSet, ImageRow


# The entries of the COCO file written (in the order their keys are written).
class _Category(TypedDict):
    id: int
    name: str
    supercategory: str
    keypoints: NotRequired[list[str]]
    skeleton: NotRequired[list[list[int]]]


class _Image(TypedDict):
    id: int
    file_name: str
    width: int
    height: int
    tags: NotRequired[dict[str, Any]]


class _Annotation(TypedDict):
    id: int
    image_id: int
    category_id: int
    bbox: list[float]
    iscrowd: int
    segmentation: NotRequired[list[list[float]] | dict[str, Any]]  # polygons, or an RLE object
    area: NotRequired[float]
    keypoints: NotRequired[list[float]]
    num_keypoints: NotRequired[int]
    attributes: NotRequired[dict[str, Any]]


def export(aset: AnnotationSet, image_files: Mapping[str, Any], dest: Path, *, split: str | None,
           link: Link | None) -> Path:
    import pyarrow as pa
    import pyarrow.compute as pc
    from pycocotools import mask as mask_utils

    sel = Selection(aset, split)
    label_key = aset.label_key or "labels"
    categories: list[_Category] = []
    for cid, name in zip(aset.classes.ids, aset.classes.names):
        cat: _Category = {"id": cid, "name": name, "supercategory": ""}
        if cid in aset.classes.keypoints:
            kp = aset.classes.keypoints[cid]
            cat["keypoints"] = list(kp.get("names", []))
            cat["skeleton"] = [list(e) for e in kp.get("skeleton", [])]
        categories.append(cat)

    # One file per split, in the order the splits first appear; annotation ids run on across them.
    splits = sel.column("split")
    group_of = None if split is not None else \
        pc.fill_null(pc.if_else(pc.equal(splits, ""), pa.scalar(None, pa.string()), splits), "all")
    groups = [split or "all"] if group_of is None else (pc.unique(group_of).to_pylist() or ["all"])
    (dest / "annotations").mkdir(parents=True, exist_ok=True)
    ann_id = 0
    for name in groups:
        rows = None if group_of is None else sel.rows_where(pc.equal(group_of, name))
        out = dest / "annotations" / f"instances_{name}.json"
        # The file is written as ``json.dump`` writes the whole document, an entry at a time;
        # the annotations go to a side file first (they follow all the images), then are appended.
        spill = out.with_name(f".{out.name}.annotations")
        with open(out, "w", encoding="utf-8") as f, open(spill, "w+", encoding="utf-8") as later:
            f.write(f'{{"info": {_json({"description": "exported by LensVault"})}, "licenses": [], '
                    f'"categories": {_json(categories)}, "images": [')
            sep_image = sep_ann = ""
            for chunk in sel.chunks(rows):
                for im, anns in chunk:
                    image_id = im["image_id"]
                    entry: _Image = {"id": image_id, "file_name": im["path"], "width": im["width"],
                                     "height": im["height"]}
                    tags = attrs(im["tags"])
                    if tags:
                        entry["tags"] = tags
                    place(im["path"], dest / im["path"], image_files, link)
                    labels = [aset.classes.name_of(a["class_id"]) for a in anns if a["kind"] == "label"]
                    if labels:
                        entry[label_key] = list(dict.fromkeys(labels))  # type: ignore[literal-required]
                    f.write(sep_image + _json(entry))
                    sep_image = ", "
                    for a in anns:
                        if a["kind"] == "label":
                            continue
                        ann_id += 1
                        later.write(sep_ann + _json(_annotation(a, ann_id, image_id, im, mask_utils)))
                        sep_ann = ", "
            f.write('], "annotations": [')
            later.seek(0)
            shutil.copyfileobj(later, f, 1 << 20)
            f.write("]}")
        spill.unlink()
    return dest


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _annotation(a: AnnotationRow, ann_id: int, image_id: int, im: ImageRow, mask_utils: ModuleType) -> _Annotation:
    bbox = [a["x"], a["y"], a["w"], a["h"]]
    out: _Annotation = {"id": ann_id, "image_id": image_id, "category_id": a["class_id"], "bbox": bbox,
           "iscrowd": int(a["iscrowd"])}
    if a["rle"] is not None:
        rle = json.loads(a["rle"])
        out["segmentation"] = rle
        out["area"] = float(mask_utils.area({"size": rle["size"], "counts": rle["counts"].encode("ascii")}))
    elif a["polygon"] and im["width"] > 0 and im["height"] > 0 and all(len(p) >= 6 for p in a["polygon"]):
        out["segmentation"] = a["polygon"]
        rles = mask_utils.frPyObjects(a["polygon"], im["height"], im["width"])
        out["area"] = float(mask_utils.area(mask_utils.merge(rles)))
    else:
        # Lines and points have no area; COCO wants a polygon list, so write the empty one.
        out["segmentation"] = a["polygon"] or []
        out["area"] = float(a["w"] * a["h"])
    if a["keypoints"]:
        out["keypoints"] = a["keypoints"]
        out["num_keypoints"] = sum(1 for v in a["keypoints"][2::3] if v > 0)
    extra = attrs(a["attributes"])
    if extra:
        out["attributes"] = extra
    return out
