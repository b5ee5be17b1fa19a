"""COCO-style detection metrics: overall, per class and per slice of tagged images.

The numbers come from pycocotools' own COCOeval, unchanged, so they match what every paper
and leaderboard reports. What this module adds: validation with located errors, no prints,
no mutation of the caller's data, per-class AP read from the ``precision`` array (the same
way detectron2 does) and per-slice metrics from a COCOeval restricted to the slice's images.
"""

from __future__ import annotations

import contextlib
import io
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lensvault.errors import InputError

__all__ = ["OVERALL_KEYS", "evaluate_detections"]

# Order of COCOeval.stats for iouType="bbox".
OVERALL_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")

_REQUIRED_GT_KEYS = ("images", "annotations", "categories")


def evaluate_detections(
    gt: Mapping[str, Any],
    predictions: Sequence[Mapping[str, Any]],
    *,
    image_tags: Mapping[Any, Mapping[str, Any]] | None = None,
    slice_keys: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Evaluate COCO results (``image_id, category_id, bbox=[x,y,w,h], score``) against ``gt``.

    ``image_tags`` maps image id -> ``{tag: value}``; every value of every key in
    ``slice_keys`` (default: all tag keys seen) becomes a slice ``"key=value"``. Tags for
    images that are not in ``gt`` are ignored, so tags of a whole dataset can be used to
    evaluate one split.

    Metrics that are undefined (no ground truth to measure against) are None, not -1/NaN.

    Boxes of zero width or height are not scored, on either side: COCO's IoU of such a box with
    anything is 0, so a zero-area ground-truth box could never be found (every detector would
    lose recall on it) and a zero-area prediction could never be right. They are left out of
    the ground truth and the predictions alike — a COCO export of a version, used as its own
    predictions, scores AP 1 — and counted (``counts.zero_area_ground_truth`` /
    ``counts.zero_area_predictions``). Crowd regions (``iscrowd``) are kept, as COCO keeps them:
    a detection on one is ignored, neither right nor wrong.
    """
    _check_gt(gt)
    image_ids = [img["id"] for img in gt["images"]]
    category_ids = {cat["id"] for cat in gt["categories"]}
    _check_predictions(predictions, set(image_ids), category_ids)

    scored_gt = [a for a in gt["annotations"] if _has_area(a["bbox"])]
    scored_predictions = [p for p in predictions if _has_area(p["bbox"])]
    coco_gt, coco_dt = _load({**gt, "annotations": scored_gt}, scored_predictions)
    overall_eval = _run_cocoeval(coco_gt, coco_dt, image_ids=None)
    result: dict[str, Any] = {
        "overall": _overall(overall_eval),
        "per_class": _per_class(overall_eval, gt["categories"], coco_gt),
        "per_slice": {},
        "counts": {
            "images": len(image_ids),
            "annotations": len(gt["annotations"]),
            "predictions": len(predictions),
            "categories": len(category_ids),
            "images_with_predictions": len({p["image_id"] for p in predictions}),
            "zero_area_ground_truth": len(gt["annotations"]) - len(scored_gt),
            "zero_area_predictions": len(predictions) - len(scored_predictions),
        },
    }
    for name, ids in _slices(image_tags, slice_keys, image_ids).items():
        sliced = _run_cocoeval(coco_gt, coco_dt, image_ids=ids)
        stats = _overall(sliced)
        result["per_slice"][name] = {
            "AP": stats["AP"],
            "AP50": stats["AP50"],
            "AP75": stats["AP75"],
            "images": len(ids),
            "annotations": len(coco_gt.getAnnIds(imgIds=ids)),
        }
    return result


# --------------------------------------------------------------------------- validation


def _check_gt(gt: Mapping[str, Any]) -> None:
    if not isinstance(gt, Mapping):
        raise InputError("ground truth must be a COCO dict", fix="pass the parsed COCO json (a dict)")
    missing = [key for key in _REQUIRED_GT_KEYS if key not in gt]
    if missing:
        raise InputError(
            f"ground truth lacks {', '.join(missing)}",
            where="gt",
            fix="pass a COCO ground-truth dict with images, annotations and categories",
        )
    for section in ("images", "categories"):
        for i, item in enumerate(gt[section]):
            if not isinstance(item, Mapping) or "id" not in item:
                raise InputError(
                    f"ground-truth {section} entry has no id", where=f"gt.{section}[{i}]", fix="give every entry an id"
                )
    for i, ann in enumerate(gt["annotations"]):
        if not isinstance(ann, Mapping) or not {"image_id", "category_id", "bbox"} <= ann.keys():
            raise InputError(
                "ground-truth annotation lacks image_id, category_id or bbox",
                where=f"gt.annotations[{i}]",
                fix="every COCO annotation needs image_id, category_id and bbox [x, y, w, h]",
            )


def _prediction_problem(pred: Any, image_ids: set, category_ids: set) -> str | None:
    if not isinstance(pred, Mapping):
        return "is not an object"
    missing = [k for k in ("image_id", "category_id", "bbox", "score") if k not in pred]
    if missing:
        return f"lacks {', '.join(missing)}"
    if not _member(pred["image_id"], image_ids):
        return f"references unknown image_id {pred['image_id']!r}"
    if not _member(pred["category_id"], category_ids):
        return f"references unknown category_id {pred['category_id']!r}"
    bbox = pred["bbox"]
    try:
        # Lists, tuples and numpy rows are all fine; strings are not boxes.
        values = [] if isinstance(bbox, (str, bytes)) else list(bbox)
    except TypeError:
        values = []
    if len(values) != 4 or not all(_finite(v) for v in values):
        return f"has bbox {bbox!r}, not [x, y, width, height] numbers"
    if values[2] < 0 or values[3] < 0:
        return f"has a negative width or height in bbox {values!r}"
    if not _finite(pred["score"]):
        return f"has score {pred['score']!r}, not a finite number"
    return None


def _has_area(bbox) -> bool:
    """Width and height both above zero (types were checked: ground truth by _check_gt's caller,
    predictions by _check_predictions)."""
    try:
        return float(bbox[2]) > 0 and float(bbox[3]) > 0
    except (TypeError, ValueError, IndexError):
        return True  # not ours to judge here: pycocotools reports it as it always did


def _member(value: Any, ids: set) -> bool:
    try:
        return not isinstance(value, bool) and value in ids
    except TypeError:  # unhashable, e.g. a list where an id belongs
        return False


def _finite(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _check_predictions(predictions: Sequence[Mapping[str, Any]], image_ids: set, category_ids: set) -> None:
    if isinstance(predictions, Mapping) or not isinstance(predictions, Sequence):
        raise InputError(
            "predictions must be a list of COCO result objects",
            where="predictions",
            fix="pass [{'image_id':..., 'category_id':..., 'bbox': [x, y, w, h], 'score':...}, ...]",
        )
    first: tuple[int, str] | None = None
    bad = 0
    for i, pred in enumerate(predictions):
        problem = _prediction_problem(pred, image_ids, category_ids)
        if problem is not None:
            bad += 1
            if first is None:
                first = (i, problem)
    if first is not None:
        index, problem = first
        raise InputError(
            f"{bad} of {len(predictions)} predictions are invalid; the first, predictions[{index}], {problem}",
            where=f"predictions[{index}]",
            fix="predictions must use the image and category ids of the ground truth being evaluated "
            "(check that the model's label map and the dataset version match)",
            bad=bad,
            first_index=index,
        )


# --------------------------------------------------------------------------- pycocotools


@contextlib.contextmanager
def _quiet():
    # pycocotools prints progress on every call; a library must not write to the user's stdout.
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def _load(gt: Mapping[str, Any], predictions: Sequence[Mapping[str, Any]]):
    from pycocotools.coco import COCO

    # COCOeval adds keys ("ignore") to GT annotations and loadRes adds id/area/segmentation to
    # results: give them copies so the caller's dicts stay as they were.
    annotations = []
    for n, ann in enumerate(gt["annotations"], start=1):
        copy = dict(ann)
        copy.setdefault("id", n)  # evaluateImg keys matches by id
        copy.setdefault("iscrowd", 0)
        if "area" not in copy:  # exported datasets often omit it; COCO's own is box area
            copy["area"] = float(ann["bbox"][2]) * float(ann["bbox"][3])
        annotations.append(copy)
    with _quiet():
        coco_gt = COCO()
        coco_gt.dataset = {
            "images": list(gt["images"]),
            "annotations": annotations,
            "categories": list(gt["categories"]),
        }
        coco_gt.createIndex()
        if predictions:
            results = [
                {
                    "image_id": p["image_id"],
                    "category_id": p["category_id"],
                    "bbox": [float(v) for v in p["bbox"]],
                    "score": float(p["score"]),
                }
                for p in predictions
            ]
            coco_dt = coco_gt.loadRes(results)
        else:
            # loadRes cannot take an empty list (it inspects results[0]); no detections is a
            # legitimate result that scores zero wherever there is ground truth.
            coco_dt = COCO()
            coco_dt.dataset = {"images": list(gt["images"]), "annotations": [], "categories": list(gt["categories"])}
            coco_dt.createIndex()
    return coco_gt, coco_dt


def _run_cocoeval(coco_gt, coco_dt, *, image_ids: list | None):
    from pycocotools.cocoeval import COCOeval

    with _quiet():
        evaluator = COCOeval(coco_gt, coco_dt, iouType="bbox")
        if image_ids is not None:
            evaluator.params.imgIds = sorted(image_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def _metric(value: float) -> float | None:
    # COCOeval writes -1 where a metric is undefined (no GT in that area range, say).
    value = float(value)
    return None if value < 0 or math.isnan(value) else value


def _overall(evaluator) -> dict[str, float | None]:
    return {key: _metric(evaluator.stats[i]) for i, key in enumerate(OVERALL_KEYS)}


def _per_class(evaluator, categories: Sequence[Mapping[str, Any]], coco_gt) -> dict[str, dict]:
    import numpy as np

    # precision: [IoU thresholds, recall thresholds, categories, area ranges, max dets];
    # area range 0 is "all", max dets -1 is 100 — the setting of the headline AP.
    precision = evaluator.eval["precision"]
    iou_thrs = evaluator.params.iouThrs
    iou50 = int(np.argmin(np.abs(iou_thrs - 0.5)))
    iou75 = int(np.argmin(np.abs(iou_thrs - 0.75)))
    by_id = {cat["id"]: cat for cat in categories}
    names = [str(by_id[cid].get("name", cid)) for cid in evaluator.params.catIds]
    per_class: dict[str, dict] = {}
    for k, cat_id in enumerate(evaluator.params.catIds):
        name = names[k]
        if names.count(name) > 1:
            name = f"{name}#{cat_id}"  # two categories with one name must not overwrite each other
        per_class[name] = {
            "AP": _mean_valid(precision[:, :, k, 0, -1]),
            "AP50": _mean_valid(precision[iou50, :, k, 0, -1]),
            "AP75": _mean_valid(precision[iou75, :, k, 0, -1]),
            "annotations": len(coco_gt.getAnnIds(catIds=[cat_id])),
        }
    return per_class


def _mean_valid(values) -> float | None:
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else None


# --------------------------------------------------------------------------- slices


def _slices(
    image_tags: Mapping[Any, Mapping[str, Any]] | None, slice_keys: Iterable[str] | None, image_ids: list
) -> dict[str, list]:
    if not image_tags:
        return {}
    known = set(image_ids)
    # JSON object keys are strings: accept "17" for image 17 when the dataset uses ints.
    by_text = {str(i): i for i in image_ids}
    tags: dict[Any, Mapping[str, Any]] = {}
    for raw_id, image_tag in image_tags.items():
        image_id = raw_id if raw_id in known else by_text.get(str(raw_id))
        if image_id is not None:
            tags[image_id] = image_tag
    keys = sorted({k for t in tags.values() for k in t}) if slice_keys is None else list(slice_keys)
    members: dict[str, list] = {}
    for key in keys:
        values: dict[str, list] = {}
        for image_id in image_ids:
            tag = tags.get(image_id)
            if tag is not None and key in tag:
                values.setdefault(str(tag[key]), []).append(image_id)
        for value in sorted(values):
            members[f"{key}={value}"] = values[value]
    return members
