"""One evaluation per vision task: the ground truth a dataset version gives each task, and the
metrics of a predictions file or folder against it.

Tasks and what they read (docs/runs.md, "Evaluations"):

=======================  ===================================  ==========================================
task                     predictions                          metrics (module)
=======================  ===================================  ==========================================
detection                COCO results JSON, ``bbox``          COCO box AP (coco_metrics, iou "bbox")
instance-segmentation    COCO results JSON, ``segmentation``  COCO mask AP (coco_metrics, iou "segm")
keypoints                COCO results JSON, ``keypoints``     COCO OKS AP (coco_metrics, "keypoints")
semantic-segmentation    a folder of index/palette PNGs       IoU, mIoU, pixel accuracy, fwIoU (semantic)
classification           CSV/JSON: image, label, score        accuracy, top-k, P/R/F1 (classification)
=======================  ===================================  ==========================================
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lensvault.errors import InputError, UsageError

__all__ = ["HEADLINE", "TASKS", "compute_task", "headline_metrics", "image_index", "predictions_bytes",
           "task_ground_truth"]

TASKS = ("detection", "instance-segmentation", "keypoints", "semantic-segmentation", "classification")
IOU_TYPE = {"detection": "bbox", "instance-segmentation": "segm", "keypoints": "keypoints"}
# The numbers release notes, `evals` and event records lead with, per task.
HEADLINE = {
    "detection": ("AP", "AP50"),
    "instance-segmentation": ("AP", "AP50"),
    "keypoints": ("AP", "AP50"),
    "semantic-segmentation": ("mIoU", "pixel_accuracy"),
    "classification": ("accuracy", "macro_F1"),
}
_COCO_IMAGE_KEYS = {"id", "file_name", "width", "height", "tags", "license", "coco_url", "flickr_url", "date_captured"}


def check_task(task: str) -> str:
    if task not in TASKS:
        raise UsageError(f"unknown task {task!r}", where="--task", fix=f"use one of {', '.join(TASKS)}")
    return task


def headline_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The task's headline numbers from a recorded evaluation's metrics (detection when the
    evaluation predates tasks)."""
    task = metrics.get("task", "detection")
    overall = metrics.get("overall") or {}
    return {key: overall.get(key) for key in HEADLINE.get(task, HEADLINE["detection"])}


def task_ground_truth(ds, split: str | None) -> dict[str, Any]:
    """The version's (or split's) images, annotations and categories as COCO dicts, every
    annotation with what any task reads: ``segmentation`` and ``area`` as ``dataset export
    --format coco`` writes them, ``keypoints``, ``kind``; image labels (kind ``label``) apart, as
    ``labels`` by image id."""
    from pycocotools import mask as mask_utils

    from lensvault.annotations.image_ids import image_ids

    images = ds.images()
    cm = ds.class_map()
    id_of = dict(zip(images.column("path").to_pylist(), image_ids(images)))
    out_images: list[dict[str, Any]] = []
    frame: dict[str, dict[str, Any]] = {}
    for r in sorted(images.select(["path", "width", "height", "split", "tags"]).to_pylist(), key=lambda r: r["path"]):
        if split is not None and r["split"] != split:
            continue
        tags = json.loads(r["tags"]) if r["tags"] else {}
        entry = {"id": id_of[r["path"]], "file_name": r["path"], "width": r["width"], "height": r["height"]}
        entry.update({k: v for k, v in tags.items() if k not in _COCO_IMAGE_KEYS})
        if tags:
            entry["tags"] = tags
        out_images.append(entry)
        frame[r["path"]] = entry
    anns: list[dict[str, Any]] = []
    labels: dict[int, list[int]] = {}
    rings: dict[tuple[int, int], list[tuple[dict[str, Any], list[float]]]] = {}
    for a in _rows_in_id_order(ds.annotations(), id_of):
        im = frame.get(a["image"])
        if im is None:
            continue
        if a["kind"] == "label":
            labels.setdefault(im["id"], []).append(a["class_id"])
            continue
        ann: dict[str, Any] = {"id": len(anns) + 1, "image_id": im["id"], "category_id": a["class_id"],
                               "bbox": [a["x"], a["y"], a["w"], a["h"]], "iscrowd": int(bool(a["iscrowd"])),
                               "kind": a["kind"], "rle": a["rle"], "polygon": a["polygon"]}
        polygon = a["polygon"]
        if a["rle"] is not None:
            rle = json.loads(a["rle"])
            ann["segmentation"] = rle
            ann["area"] = float(mask_utils.area({"size": rle["size"], "counts": rle["counts"].encode("ascii")}))
        elif polygon and im["width"] > 0 and im["height"] > 0 and all(len(p) >= 6 for p in polygon):
            ann["segmentation"] = polygon
            if len(polygon) == 1:  # the common case: measured below, many rings per call
                rings.setdefault((im["height"], im["width"]), []).append((ann, polygon[0]))
            else:
                ann["area"] = float(mask_utils.area(mask_utils.merge(
                    mask_utils.frPyObjects(polygon, im["height"], im["width"]))))
        else:
            ann["segmentation"] = polygon or []
            ann["area"] = float(a["w"] * a["h"])
        if a["keypoints"]:
            ann["keypoints"] = a["keypoints"]
            ann["num_keypoints"] = sum(1 for v in a["keypoints"][2::3] if v > 0)
        anns.append(ann)
    for (h, w), items in rings.items():
        # One ring is one RLE: its area is what merge + area of that ring alone gives (the export's).
        # pycocotools' area() counts its inputs in a uint8: at most 255 per call.
        for start in range(0, len(items), 255):
            part = items[start:start + 255]
            areas = mask_utils.area(mask_utils.frPyObjects([ring for _, ring in part], h, w))
            for (ann, _), area in zip(part, areas):
                ann["area"] = float(area)
    categories = []
    for cid, name in zip(cm.ids, cm.names):
        cat: dict[str, Any] = {"id": cid, "name": name, "supercategory": ""}
        if cid in cm.keypoints:
            cat["keypoints"] = list(cm.keypoints[cid]["names"])
            cat["skeleton"] = [list(e) for e in cm.keypoints[cid]["skeleton"]]
        categories.append(cat)
    return {"images": out_images, "annotations": anns, "categories": categories, "labels": labels}


def _rows_in_id_order(table, id_of: dict[str, int]):
    """The annotation rows ordered by (image id, index), a few thousand at a time: a whole table
    as Python dicts is several times its Arrow size (at 40,000 polygons, ~150 MB at once)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = ["image", "index", "class_id", "x", "y", "w", "h", "kind", "polygon", "rle", "keypoints", "iscrowd"]
    table = table.select(columns)
    paths = list(id_of)
    position = pc.index_in(table.column("image"), value_set=pa.array(paths, pa.string()))
    ids = pa.array([id_of[p] for p in paths], pa.int64())
    order_ids = pc.take(ids, pc.fill_null(position, 0))
    table = table.append_column("_id", order_ids).sort_by([("_id", "ascending"), ("index", "ascending")])
    for batch in table.drop_columns(["_id"]).to_batches(max_chunksize=2048):
        yield from batch.to_pylist()


def image_index(ds) -> tuple[dict[str, int], set[str]]:
    """Every image path of the version with its id, and the version's split names."""
    from lensvault.annotations.image_ids import image_ids

    images = ds.images()
    paths = images.column("path").to_pylist()
    splits = {s or "unassigned" for s in images.column("split").to_pylist()}
    return dict(zip(paths, image_ids(images))), splits


def predictions_bytes(path: Path) -> bytes:
    """What the store keeps of the predictions: the file, or for a folder (semantic masks) a tar of
    its PNGs in name order with no times or owners, so the same masks give the same object."""
    path = Path(path)
    if not path.is_dir():
        return path.read_bytes()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for f in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() == ".png"):
            data = f.read_bytes()
            info = tarfile.TarInfo(f.relative_to(path).as_posix())
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def compute_task(ds, gt: dict[str, Any], all_ids: dict[str, int], task: str, predictions: Path, *,
                 slice_keys=None, ignore_index: int = 255, top_k: int = 5,
                 oks_sigmas: Sequence[float] | None = None, multi_label: bool = False,
                 threshold: float = 0.5) -> tuple[dict[str, Any], bytes]:
    """Metrics of ``predictions`` for ``task`` against ``gt`` (``task_ground_truth`` of the split);
    ``all_ids`` maps every path of the version to its image id (names outside the split are told
    apart from names the version does not have). Returns the metrics and the bytes to store."""
    tags = {im["id"]: im.get("tags", {}) for im in gt["images"]}
    if task == "semantic-segmentation":
        return _semantic(ds, gt, predictions, tags, slice_keys, ignore_index), predictions_bytes(predictions)
    if task == "classification" and multi_label:
        return (_multilabel(gt, all_ids, predictions, tags, slice_keys, threshold),
                predictions_bytes(predictions))
    if task == "classification":
        return _classification(gt, all_ids, predictions, tags, slice_keys, top_k), predictions_bytes(predictions)
    raise AssertionError(task)  # the COCO tasks go through recorded._compute


def _semantic(ds, gt, predictions: Path, tags, slice_keys, ignore_index: int) -> dict[str, Any]:
    from lensvault.evaluations.semantic import (
        background_id,
        evaluate_semantic,
        rasterize_ground_truth,
        read_prediction_folder,
    )

    if not 0 <= ignore_index <= 65535:
        raise UsageError(f"ignore index {ignore_index} is not a pixel value", where="--ignore-index",
                         fix="give a value 0..255 (255 by default)")
    class_ids = [c["id"] for c in gt["categories"]]
    names = [c["name"] for c in gt["categories"]]
    if ignore_index in class_ids:
        raise UsageError(f"ignore index {ignore_index} is the id of class {names[class_ids.index(ignore_index)]!r}",
                         where="--ignore-index", fix="give an ignore index no class uses")
    pred_masks, where = read_prediction_folder(Path(predictions), gt["images"])
    bg = background_id(class_ids, names)
    fill = ignore_index if bg is None else bg
    by_image: dict[int, list[dict[str, Any]]] = {}
    for a in gt["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    gt_masks = {im["id"]: rasterize_ground_truth(im, by_image.get(im["id"], []), fill, ignore_index)
                for im in gt["images"]}
    result = evaluate_semantic(gt_masks, pred_masks, class_ids, names, ignore_index=ignore_index,
                               image_tags=tags, slice_keys=slice_keys, where=where)
    result["counts"]["background_class"] = None if bg is None else names[class_ids.index(bg)]
    return result


def _classification(gt, all_ids: dict[str, int], predictions: Path, tags, slice_keys, top_k: int) -> dict[str, Any]:
    from lensvault.evaluations.classification import evaluate_classification, parse_predictions

    truth: dict[int, int] = {}
    multi, unlabeled = [], []
    for im in gt["images"]:
        found = sorted(set(gt["labels"].get(im["id"], [])))
        if len(found) == 1:
            truth[im["id"]] = found[0]
        elif found:
            multi.append(im["file_name"])
        else:
            unlabeled.append(im["file_name"])
    if multi:
        raise InputError(f"{len(multi)} image(s) have more than one label: {', '.join(multi[:5])}"
                         + (f" … and {len(multi) - 5} more" if len(multi) > 5 else ""), where="ground truth",
                         fix="score a multi-label version with --multi-label (and --threshold), or evaluate a "
                             "single-label version")
    if not truth:
        raise InputError("the version has no image labels to evaluate against", where="ground truth",
                         fix="snapshot a classification dataset (ImageFolder, a labels CSV/JSON, labelme flags)")
    image_of, class_of, outside = _resolvers(gt, all_ids)
    where = str(predictions)
    raw = _read(predictions)
    preds = parse_predictions(raw, where, image_of=image_of, class_of=class_of)
    _refuse_outside_and_missing(gt, truth, preds, outside, where)
    class_ids = [c["id"] for c in gt["categories"]]
    names = [c["name"] for c in gt["categories"]]
    result = evaluate_classification(truth, {i: preds[i] for i in truth}, class_ids, names, top_k=top_k,
                                     image_tags=tags, slice_keys=slice_keys)
    result["counts"]["unlabeled_images"] = len(unlabeled)
    return result


def _multilabel(gt, all_ids: dict[str, int], predictions: Path, tags, slice_keys, threshold: float) -> dict[str, Any]:
    """Every image of the split is scored, an unlabeled one as having none of the classes."""
    from lensvault.evaluations.multilabel import evaluate_multilabel, parse_multilabel_predictions

    if not 0.0 <= threshold <= 1.0 or threshold != threshold:
        raise UsageError(f"threshold {threshold} is not a score", where="--threshold", fix="give a value in [0, 1]")
    if not any(gt["labels"].get(im["id"]) for im in gt["images"]):
        raise InputError("the version has no image labels to evaluate against", where="ground truth",
                         fix="snapshot a classification dataset (ImageFolder, a labels CSV/JSON, labelme flags)")
    truth = {im["id"]: sorted(set(gt["labels"].get(im["id"], []))) for im in gt["images"]}
    image_of, class_of, outside = _resolvers(gt, all_ids)
    where = str(predictions)
    raw = _read(predictions)
    class_ids = [c["id"] for c in gt["categories"]]
    names = [c["name"] for c in gt["categories"]]
    preds = parse_multilabel_predictions(raw, where, image_of=image_of, class_of=class_of, class_ids=class_ids,
                                         threshold=threshold)
    _refuse_outside_and_missing(gt, truth, preds, outside, where)
    return evaluate_multilabel(truth, {i: preds[i] for i in truth}, class_ids, names, threshold=threshold,
                               image_tags=tags, slice_keys=slice_keys)


def _read(predictions: Path) -> bytes:
    try:
        return Path(predictions).read_bytes()
    except OSError as e:
        raise InputError("predictions file cannot be read", where=str(predictions),
                         fix="give a CSV or JSON file") from e


def _resolvers(gt, all_ids: dict[str, int]):
    """``image_of`` and ``class_of`` for the prediction parsers (a name, path or id to an id, or
    None), and the list ``image_of`` fills with images of the version outside the split."""
    in_split = {im["id"] for im in gt["images"]}
    known_ids = set(all_ids.values())
    by_base: dict[str, list[int]] = {}
    for p, i in all_ids.items():
        by_base.setdefault(p.rsplit("/", 1)[-1], []).append(i)
    outside: list[str] = []

    def image_of(value: Any) -> int | None:
        if isinstance(value, int) and not isinstance(value, bool):
            iid = value if value in known_ids else None
        elif isinstance(value, str):
            iid = all_ids.get(value)
            if iid is None and value.isdigit():
                iid = int(value) if int(value) in known_ids else None
            if iid is None:
                matches = by_base.get(value.rsplit("/", 1)[-1], [])
                iid = matches[0] if len(matches) == 1 else None
        else:
            return None
        if iid is not None and iid not in in_split:
            outside.append(repr(value))
            return None
        return iid

    by_name = {c["name"]: c["id"] for c in gt["categories"]}
    ids = set(by_name.values())

    def class_of(value: Any) -> int | None:
        if isinstance(value, str):
            if value in by_name:
                return by_name[value]
            return int(value) if value.lstrip("-").isdigit() and int(value) in ids else None
        if isinstance(value, int) and not isinstance(value, bool):
            return value if value in ids else None
        return None

    return image_of, class_of, outside


def _refuse_outside_and_missing(gt, truth, preds, outside: list[str], where: str) -> None:
    if outside:
        raise InputError(f"{len(outside)} prediction(s) are for images outside the split: "
                         + ", ".join(sorted(set(outside))[:5]), where=where,
                         fix="predict the split's images only, or evaluate --split all")
    missing = [im["file_name"] for im in gt["images"] if im["id"] in truth and im["id"] not in preds]
    if missing:
        raise InputError(f"{len(missing)} image(s) of the split have no prediction: {', '.join(missing[:5])}"
                         + (f" … and {len(missing) - 5} more" if len(missing) > 5 else ""), where=where,
                         fix="predict every image of the split (a missing image would inflate accuracy)")
