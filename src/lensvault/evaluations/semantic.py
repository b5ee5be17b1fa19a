"""Semantic segmentation metrics from one confusion matrix: per-class IoU, mIoU, pixel accuracy,
frequency-weighted IoU, overall, per class and per slice of tagged images.

The matrix is counted with NumPy (``bincount`` of ``gt * K + pred`` over the pixels whose ground
truth is not the ignore index), then every metric is read from it:

* IoU of class c = TP / (TP + FP + FN); undefined (None) where the class is in neither the ground
  truth nor the predictions (0 / 0);
* mIoU = the mean of the defined IoUs (as mmsegmentation's ``nanmean``);
* pixel accuracy = trace / all counted pixels;
* frequency-weighted IoU = sum over classes of (ground-truth pixels of c / all pixels) x IoU(c),
  classes with an undefined IoU contributing nothing (they have no ground-truth pixels).

Ground truth comes from the dataset version: every ``mask``/``rle``/``polygon`` annotation painted
in order onto its image; pixels no annotation covers are the background class (a class named
``background``, ``_background_`` or ``__background__``) or, without one, ignored. Crowd regions
are ignored. Predictions are a folder of index or palette PNGs (pixel value = class id, 255 =
ignore by default), one per image, named like the image (``images/a.jpg`` → ``images/a.png``, or
``a.png`` when that name is unique).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lensvault.annotations.painting import background_id, rasterize_ground_truth
from lensvault.errors import InputError

__all__ = ["DEFAULT_IGNORE_INDEX", "background_id", "confusion_matrix", "evaluate_semantic", "metrics_from_confusion",
           "rasterize_ground_truth", "read_prediction_folder"]

DEFAULT_IGNORE_INDEX = 255
_SHOW = 5


def _first(values: Sequence[str]) -> str:
    values = list(values)
    return ", ".join(values[:_SHOW]) + (f" … and {len(values) - _SHOW} more" if len(values) > _SHOW else "")


def confusion_matrix(gt, pred, class_ids: Sequence[int], *, ignore_index: int = DEFAULT_IGNORE_INDEX):
    """K x K counts (rows: ground truth, columns: prediction, in ``class_ids`` order) over the
    pixels whose ground truth is not ``ignore_index``. A predicted ``ignore_index`` on such a pixel
    is a miss: it counts in no column but stays in the total (so it lowers recall and accuracy).

    Values of ``pred`` (or ``gt``) that are neither a class id nor ``ignore_index`` raise
    ``ValueError`` naming them; the caller locates it.
    """
    import numpy as np

    gt = np.asarray(gt)
    pred = np.asarray(pred)
    if gt.shape != pred.shape:
        raise ValueError(f"shapes differ: ground truth {gt.shape}, prediction {pred.shape}")
    k = len(class_ids)
    top = max(max(class_ids, default=0), ignore_index, int(gt.max(initial=0)), int(pred.max(initial=0))) + 1
    index = np.full(top, -1, dtype=np.int64)
    index[np.asarray(class_ids, dtype=np.int64)] = np.arange(k)
    for name, values in (("prediction", pred), ("ground truth", gt)):
        if values.size and int(values.min()) < 0:
            raise ValueError(f"{name} has negative values")
        found = np.unique(values)
        unknown = [int(v) for v in found if index[int(v)] < 0 and int(v) != ignore_index]
        if unknown:
            raise ValueError(f"{name} has values that are not class ids: {_first([str(v) for v in unknown])}")
    counted = gt != ignore_index
    g = index[gt[counted]]
    p = index[pred[counted]]
    hit = p >= 0
    cm = np.bincount(g[hit] * k + p[hit], minlength=k * k).reshape(k, k).astype(np.int64)
    missed = np.bincount(g[~hit], minlength=k).astype(np.int64)  # predicted ignore on a counted pixel
    return cm, missed


def metrics_from_confusion(cm, missed, class_ids: Sequence[int], names: Sequence[str]) -> dict[str, Any]:
    """The metrics of one confusion matrix (see the module doc); ``missed`` are ground-truth pixels
    per class predicted as the ignore index."""
    import numpy as np

    cm = np.asarray(cm, dtype=np.float64)
    missed = np.asarray(missed, dtype=np.float64)
    tp = np.diag(cm)
    gt_pixels = cm.sum(axis=1) + missed
    pred_pixels = cm.sum(axis=0)
    union = gt_pixels + pred_pixels - tp
    total = float(gt_pixels.sum())
    per_class: dict[str, dict[str, Any]] = {}
    ious: list[float] = []
    fw = 0.0
    for i, (cid, name) in enumerate(zip(class_ids, names)):
        iou = float(tp[i] / union[i]) if union[i] > 0 else None
        acc = float(tp[i] / gt_pixels[i]) if gt_pixels[i] > 0 else None
        if iou is not None:
            ious.append(iou)
            fw += (gt_pixels[i] / total) * iou if total > 0 else 0.0
        key = name if list(names).count(name) == 1 else f"{name}#{cid}"
        per_class[key] = {"IoU": iou, "accuracy": acc, "pixels": int(gt_pixels[i]),
                          "predicted_pixels": int(pred_pixels[i])}
    overall = {
        "mIoU": float(sum(ious) / len(ious)) if ious else None,
        "pixel_accuracy": float(tp.sum() / total) if total > 0 else None,
        "fwIoU": float(fw) if total > 0 else None,
        "mean_accuracy": _mean([v["accuracy"] for v in per_class.values()]),
    }
    return {"overall": overall, "per_class": per_class}


def _mean(values: Iterable[float | None]) -> float | None:
    defined = [v for v in values if v is not None]
    return float(sum(defined) / len(defined)) if defined else None


def evaluate_semantic(
    gt_masks: Mapping[Any, Any],
    pred_masks: Mapping[Any, Any],
    class_ids: Sequence[int],
    names: Sequence[str],
    *,
    ignore_index: int = DEFAULT_IGNORE_INDEX,
    image_tags: Mapping[Any, Mapping[str, Any]] | None = None,
    slice_keys: Iterable[str] | None = None,
    where: Mapping[Any, str] | None = None,
) -> dict[str, Any]:
    """Metrics of predicted index maps against ground-truth ones, both by image id; overall, per
    class and per slice (``"key=value"`` of the images' tags, as for detection)."""
    import numpy as np

    from lensvault.evaluations.coco_metrics import _slices

    k = len(class_ids)
    per_image: dict[Any, tuple[Any, Any]] = {}
    problems: list[str] = []
    for image_id, gt in gt_masks.items():
        try:
            per_image[image_id] = confusion_matrix(gt, pred_masks[image_id], class_ids, ignore_index=ignore_index)
        except ValueError as e:
            problems.append(f"{(where or {}).get(image_id, image_id)}: {e}")
    if problems:
        raise InputError(f"{len(problems)} predicted mask(s) cannot be scored: " + "; ".join(problems[:_SHOW])
                         + (f" … and {len(problems) - _SHOW} more" if len(problems) > _SHOW else ""),
                         where=str(next(iter(problems)).split(":")[0]),
                         fix=f"pixel values must be class ids ({', '.join(map(str, class_ids))}) "
                             f"or {ignore_index} (ignore)")

    def total(ids: Iterable[Any]):
        cm = np.zeros((k, k), dtype=np.int64)
        missed = np.zeros(k, dtype=np.int64)
        for i in ids:
            cm += per_image[i][0]
            missed += per_image[i][1]
        return cm, missed

    cm, missed = total(per_image)
    result = metrics_from_confusion(cm, missed, class_ids, names)
    result["confusion_matrix"] = {"classes": list(result["per_class"]), "counts": cm.tolist()}
    result["per_slice"] = {}
    image_ids = list(gt_masks)
    for name, ids in _slices(image_tags, slice_keys, image_ids).items():
        slice_cm, slice_missed = total(ids)
        sliced = metrics_from_confusion(slice_cm, slice_missed, class_ids, names)
        result["per_slice"][name] = {**sliced["overall"], "images": len(ids)}
    result["counts"] = {"images": len(image_ids), "categories": k, "ignore_index": ignore_index,
                        "pixels": int(cm.sum() + missed.sum())}
    return result


# --------------------------------------------------------------------------- ground truth


# --------------------------------------------------------------------------- predictions


def _key(path: str) -> str:
    stem = path.rsplit(".", 1)[0] if "." in path.rsplit("/", 1)[-1] else path
    return stem


def read_prediction_folder(folder: Path, images: Sequence[Mapping[str, Any]]) -> tuple[dict[Any, Any], dict[Any, str]]:
    """Predicted index maps by image id, from ``folder`` (see the module doc), and where each came
    from. Refuses files that name no image, images with no file, PNGs of the wrong size and
    RGB masks, each listed."""
    import numpy as np
    from PIL import Image

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("semantic-segmentation predictions must be a folder of PNG masks", where=str(folder),
                         fix="write one index or palette PNG per image (pixel value = class id)")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() == ".png")
    if not files:
        raise InputError("the predictions folder has no PNG masks", where=str(folder),
                         fix="write one index or palette PNG per image, named like the image")
    by_key = {_key(im["file_name"]): im for im in images}
    by_stem: dict[str, list[Mapping[str, Any]]] = {}
    for im in images:
        by_stem.setdefault(_key(im["file_name"]).rsplit("/", 1)[-1], []).append(im)
    found: dict[Any, Path] = {}
    unknown: list[str] = []
    twice: list[str] = []
    for f in files:
        rel = f.relative_to(folder).as_posix()
        hit: Mapping[str, Any] | None = by_key.get(_key(rel))
        if hit is None:
            matches = by_stem.get(_key(rel).rsplit("/", 1)[-1], [])
            hit = matches[0] if len(matches) == 1 else None
        if hit is None:
            unknown.append(rel)
        elif hit["id"] in found:
            twice.append(f"{hit['file_name']} ({found[hit['id']].relative_to(folder).as_posix()}, {rel})")
        else:
            found[hit["id"]] = f
    missing = [im["file_name"] for im in images if im["id"] not in found]
    problems = []
    if unknown:
        problems.append(f"{len(unknown)} mask(s) name no image of the split: {_first(unknown)}")
    if twice:
        problems.append(f"{len(twice)} image(s) have two masks: {_first(twice)}")
    if missing:
        problems.append(f"{len(missing)} image(s) have no mask: {_first(missing)}")
    if problems:
        raise InputError("; ".join(problems), where=str(folder),
                         fix="name each mask like its image with .png (images/a.jpg → images/a.png or a.png), "
                             "one per image of the split")
    by_id = {im["id"]: im for im in images}
    masks: dict[Any, Any] = {}
    where: dict[Any, str] = {}
    wrong_size, wrong_mode = [], []
    for image_id, f in found.items():
        rel = f.relative_to(folder).as_posix()
        with Image.open(f) as img:
            if img.mode not in ("P", "L", "I", "I;16"):
                wrong_mode.append(f"{rel} ({img.mode})")
                continue
            array = np.asarray(img, dtype=np.int64)
        im = by_id[image_id]
        if array.shape != (int(im["height"]), int(im["width"])):
            wrong_size.append(f"{rel} is {array.shape[1]}x{array.shape[0]}, its image {im['width']}x{im['height']}")
            continue
        masks[image_id] = array
        where[image_id] = str(f)
    if wrong_mode:
        raise InputError(f"{len(wrong_mode)} mask(s) are not index or palette PNGs: {_first(wrong_mode)}",
                         where=str(folder), fix="save masks as mode P (palette) or L (grey) PNGs whose values are class ids")
    if wrong_size:
        raise InputError(f"{len(wrong_size)} mask(s) have the wrong size: {_first(wrong_size)}", where=str(folder),
                         fix="predict at the image's stored size (width x height of the version's images)")
    return masks, where

