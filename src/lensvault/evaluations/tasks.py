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


def task_ground_truth(ds, split: str | None, *, shapes: bool = True, ignore_regions: bool = True,
                      rle_masks: bool = False) -> dict[str, Any]:
    """The version's (or split's) images, annotations and categories as COCO dicts, every
    annotation with what any task reads: ``segmentation`` and ``area`` as ``dataset export
    --format coco`` writes them, ``keypoints``, ``kind``; image labels (kind ``label``) apart, as
    ``labels`` by image id. ``shapes=False`` (box AP): no ``segmentation``, ``kind``, ``rle`` or
    ``polygon`` (the areas are still the masks', from ``coco_areas``). ``ignore_regions=False``: a
    masks import's ignore regions (crowd masks of the background) are left out — no object to
    find, as the COCO export leaves them out; semantic evaluation paints them ignored.
    ``rle_masks=True`` (mask AP): every polygon's ``segmentation`` is its mask as COCO's compressed
    RLE (``{"size": [h, w], "counts": str}``, rasterized once per version, ``coco_areas``), and no
    ``kind``, ``rle`` or ``polygon``: COCO rasterizes no polygon again and no polygon list is held
    (a polygon without a frame or of fewer than three points stays as it is, as in the export)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from lensvault.annotations.image_ids import image_ids
    from lensvault.evaluations.coco_areas import annotation_areas, annotation_masks, cache_key

    images = ds.images()
    cm = ds.class_map()
    id_of = dict(zip(images.column("path").to_pylist(), image_ids(images)))
    out_images: list[dict[str, Any]] = []
    frame: dict[int, dict[str, Any]] = {}
    for r in sorted(images.select(["path", "width", "height", "split", "tags"]).to_pylist(), key=lambda r: r["path"]):
        if split is not None and r["split"] != split:
            continue
        tags = json.loads(r["tags"]) if r["tags"] else {}
        entry = {"id": id_of[r["path"]], "file_name": r["path"], "width": r["width"], "height": r["height"]}
        entry.update({k: v for k, v in tags.items() if k not in _COCO_IMAGE_KEYS})
        if tags:
            entry["tags"] = tags
        out_images.append(entry)
        frame[entry["id"]] = entry
    table = ds.annotations()
    sizes = {p: (h, w) for p, w, h in zip(images.column("path").to_pylist(), images.column("width").to_pylist(),
                                          images.column("height").to_pylist())}
    key = cache_key(ds.manifest().tables)
    masks = None
    if rle_masks:
        areas, masks = annotation_masks(ds.vault.dir / "cache", key, table, sizes)
    else:
        areas = annotation_areas(ds.vault.dir / "cache", key, table, sizes)
    # Rows in (image id, index) order — the export's — with their position in the table (areas).
    paths = list(id_of)
    position = pc.index_in(table.column("image"), value_set=pa.array(paths, pa.string()))
    row_ids = pc.take(pa.array([id_of[p] for p in paths], pa.int64()), pc.fill_null(position, 0))
    order = np.lexsort((table.column("index").to_numpy(), row_ids.to_numpy()))
    image_id = row_ids.to_numpy()[order]
    keep = np.fromiter((i in frame for i in image_id.tolist()), dtype=bool, count=len(order))
    if not ignore_regions:
        from lensvault.annotations.exporters._files import IGNORE_REGION

        region = pc.and_(pc.equal(table.column("attributes"), IGNORE_REGION), table.column("iscrowd"))
        keep &= ~region.to_numpy(zero_copy_only=False)[order]
    order, image_id = order[keep], image_id[keep]
    sub = table.take(pa.array(order))
    col = {name: sub.column(name).to_pylist() for name in ("class_id", "x", "y", "w", "h", "kind", "iscrowd",
                                                            "keypoints")}
    polygons = sub.column("polygon").to_pylist() if shapes and masks is None else None
    rles = sub.column("rle").to_pylist() if shapes else None
    rows = order.tolist() if masks is not None else None
    anns: list[dict[str, Any]] = []
    labels: dict[int, list[int]] = {}
    for n, (iid, cid, x, y, w, h, kind, crowd, kps, area) in enumerate(zip(
            image_id.tolist(), col["class_id"], col["x"], col["y"], col["w"], col["h"], col["kind"], col["iscrowd"],
            col["keypoints"], areas[order].tolist())):
        if kind == "label":
            labels.setdefault(iid, []).append(cid)
            continue
        ann: dict[str, Any] = {"id": len(anns) + 1, "image_id": iid, "category_id": cid, "bbox": [x, y, w, h],
                               "iscrowd": int(bool(crowd)), "area": area}
        if masks is not None:
            assert rles is not None and rows is not None
            counts = masks[rows[n]]
            if counts is not None:
                im = frame[iid]
                ann["segmentation"] = {"size": [im["height"], im["width"]], "counts": counts}
            elif rles[n] is not None:
                ann["segmentation"] = json.loads(rles[n])
            else:  # no frame or no ring of three points: COCO makes of it what it makes of the export's
                ann["segmentation"] = sub.column("polygon")[n].as_py() or []
        elif shapes:
            assert polygons is not None and rles is not None
            polygon, rle = polygons[n], rles[n]
            im = frame[iid]
            ann.update(kind=kind, rle=rle, polygon=polygon)
            if rle is not None:
                ann["segmentation"] = json.loads(rle)
            elif polygon and im["width"] > 0 and im["height"] > 0 and all(len(p) >= 6 for p in polygon):
                ann["segmentation"] = polygon
            else:
                ann["segmentation"] = polygon or []
        if kps:
            ann["keypoints"] = kps
            ann["num_keypoints"] = sum(1 for v in kps[2::3] if v > 0)
        anns.append(ann)
    categories = []
    for cid, name in zip(cm.ids, cm.names):
        cat: dict[str, Any] = {"id": cid, "name": name, "supercategory": ""}
        if cid in cm.keypoints:
            cat["keypoints"] = list(cm.keypoints[cid]["names"])
            cat["skeleton"] = [list(e) for e in cm.keypoints[cid]["skeleton"]]
        categories.append(cat)
    return {"images": out_images, "annotations": anns, "categories": categories, "labels": labels}


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
    # The background the masks import recorded (dataset_meta's background_label, --background-label),
    # else a class named background: pixels no annotation covers are its.
    recorded = ((ds.manifest().source or {}).get("masks") or {})
    bg = recorded["background_class"] if "background_class" in recorded else background_id(class_ids, names)
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
