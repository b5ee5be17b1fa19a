"""Multi-label classification metrics: each image has a set of true labels (the version's image
labels, any number) and a predicted set — given as names, or as a score per class thresholded at
``threshold`` (a class is predicted when its score >= the threshold).

Definitions (scikit-learn's, on the image × class indicator matrices; ``K`` the classes of the
class map, ``N`` the images):

* per class c: TP, FP, FN over images; precision = TP / (TP + FP), recall = TP / (TP + FN),
  F1 = 2TP / (2TP + FP + FN), each None where its denominator is 0;
* micro: the same formulas on TP, FP, FN summed over classes;
* macro: the unweighted mean over the classes that occur in the truth or the predictions (a None
  counted 0, scikit-learn's ``zero_division=0``);
* subset accuracy (``accuracy``): images whose predicted set equals the true set, / N;
* Hamming loss: wrong (image, class) cells / (N × K);
* AP(c), from scores only: scikit-learn's ``average_precision_score`` — Σₙ (Rₙ − Rₙ₋₁) Pₙ over
  the distinct scores from the highest down (tied scores are one step); None for a class no image
  truly has. ``mAP`` is the mean of the defined APs.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lensvault.errors import InputError
from lensvault.evaluations.refusals import refuse_predictions

__all__ = ["DEFAULT_THRESHOLD", "MultiLabelPrediction", "evaluate_multilabel", "parse_multilabel_predictions"]

DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class MultiLabelPrediction:
    """One image's prediction: the predicted class ids, and the score of every class when given."""

    labels: frozenset[int]
    scores: dict[int, float] | None = None



def average_precision(truth: Sequence[bool], scores: Sequence[float]) -> float | None:
    """scikit-learn's average precision of one class: None when no image truly has it."""
    positives = sum(truth)
    if not positives:
        return None
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    ap = 0.0
    tp = fp = 0
    prev_recall = 0.0
    n = 0
    while n < len(order):
        s = scores[order[n]]
        while n < len(order) and scores[order[n]] == s:  # a tie is one threshold
            if truth[order[n]]:
                tp += 1
            else:
                fp += 1
            n += 1
        recall = tp / positives
        ap += (recall - prev_recall) * (tp / (tp + fp))
        prev_recall = recall
    return ap


def evaluate_multilabel(
    truth: Mapping[Any, Iterable[int]],
    predictions: Mapping[Any, MultiLabelPrediction],
    class_ids: Sequence[int],
    names: Sequence[str],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    image_tags: Mapping[Any, Mapping[str, Any]] | None = None,
    slice_keys: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Metrics of ``predictions`` (by image id) against ``truth`` (image id → class ids, possibly
    none); every image of ``truth`` has a prediction (the caller checked)."""
    from lensvault.evaluations.coco_metrics import _slices

    image_ids = list(truth)
    sets = {i: frozenset(truth[i]) for i in image_ids}
    result = _metrics(image_ids, sets, predictions, class_ids, names)
    result["per_slice"] = {}
    for name, ids in _slices(image_tags, slice_keys, image_ids).items():
        sliced = _metrics(ids, sets, predictions, class_ids, names)
        result["per_slice"][name] = {**sliced["overall"], "images": len(ids)}
    result["multi_label"] = True
    result["threshold"] = threshold
    result["counts"] = {"images": len(image_ids), "categories": len(class_ids),
                        "true_labels": sum(len(s) for s in sets.values()),
                        "predicted_labels": sum(len(predictions[i].labels) for i in image_ids),
                        "with_scores": sum(1 for i in image_ids if predictions[i].scores is not None)}
    return result


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _metrics(ids: Sequence[Any], truth: Mapping[Any, frozenset[int]], predictions: Mapping[Any, MultiLabelPrediction],
             class_ids: Sequence[int], names: Sequence[str]) -> dict[str, Any]:
    n, k = len(ids), len(class_ids)
    scored = bool(ids) and all(predictions[i].scores is not None for i in ids)
    per_class: dict[str, dict[str, Any]] = {}
    sums = [0, 0, 0]
    macro: dict[str, list[float]] = {"precision": [], "recall": [], "F1": []}
    aps: list[float] = []
    for cid, name in zip(class_ids, names):
        has = [cid in truth[i] for i in ids]
        said = [cid in predictions[i].labels for i in ids]
        tp = sum(1 for h, s in zip(has, said) if h and s)
        fp = sum(1 for h, s in zip(has, said) if s and not h)
        fn = sum(1 for h, s in zip(has, said) if h and not s)
        sums[0], sums[1], sums[2] = sums[0] + tp, sums[1] + fp, sums[2] + fn
        p, r, f1 = _ratio(tp, tp + fp), _ratio(tp, tp + fn), _ratio(2 * tp, 2 * tp + fp + fn)
        ap = average_precision(has, [predictions[i].scores[cid] for i in ids]) if scored else None  # type: ignore[index]
        key = name if list(names).count(name) == 1 else f"{name}#{cid}"
        per_class[key] = {"precision": p, "recall": r, "F1": f1, "AP": ap, "support": tp + fn, "predicted": tp + fp,
                          "TP": tp, "FP": fp, "FN": fn}
        if tp + fn or tp + fp:
            macro["precision"].append(p or 0.0)
            macro["recall"].append(r or 0.0)
            macro["F1"].append(f1 or 0.0)
        if ap is not None:
            aps.append(ap)
    tp, fp, fn = sums
    exact = sum(1 for i in ids if predictions[i].labels == truth[i])
    wrong = sum(len(predictions[i].labels ^ truth[i]) for i in ids)
    overall = {
        "accuracy": _ratio(exact, n),  # subset accuracy, as scikit-learn's accuracy_score on multi-label
        "subset_accuracy": _ratio(exact, n),
        "hamming_loss": _ratio(wrong, n * k),
        "micro_precision": _ratio(tp, tp + fp), "micro_recall": _ratio(tp, tp + fn),
        "micro_F1": _ratio(2 * tp, 2 * tp + fp + fn),
        "macro_precision": sum(macro["precision"]) / len(macro["precision"]) if macro["precision"] else None,
        "macro_recall": sum(macro["recall"]) / len(macro["recall"]) if macro["recall"] else None,
        "macro_F1": sum(macro["F1"]) / len(macro["F1"]) if macro["F1"] else None,
        "mAP": sum(aps) / len(aps) if aps else None,
    }
    return {"overall": overall, "per_class": per_class}


# --------------------------------------------------------------------------- predictions file


def parse_multilabel_predictions(raw: bytes, where: str, *, image_of, class_of, class_ids: Sequence[int],
                                 threshold: float) -> dict[Any, MultiLabelPrediction]:
    """Predictions by image id from a CSV or JSON file (docs/runs.md):

    * a score per class: CSV ``image,<class>,<class>,…`` (the header naming every class) or JSON
      ``[{"image": …, "scores": {class: score, …}}]``; the predicted set is the classes scoring
      at least ``threshold``, and every class of the class map needs a score (AP ranks them all);
    * the predicted set itself: CSV ``image,labels`` (names joined by ``;``, empty for none) or
      JSON ``[{"image": …, "labels": [class, …]}]``.

    Refused, the offenders listed: unknown images or classes, scores outside [0, 1] or not numbers
    (NaN too), classes without a score, two predictions for one image (or one class twice in an
    image's labels), an empty file.
    """
    text = raw.decode("utf-8-sig", errors="replace").strip()
    fix_empty = "write one prediction per image: image,<class>,<class>,… scores (CSV) or a JSON list"
    if not text:
        raise InputError("the predictions file is empty", where=where, fix=fix_empty)
    rows = _json_rows(text, where) if text[0] in "[{" else _csv_rows(text, where)
    if not rows:
        raise InputError("the predictions file has no predictions", where=where, fix=fix_empty)
    out: dict[Any, MultiLabelPrediction] = {}
    unknown_images: list[str] = []
    unknown_classes: list[str] = []
    bad_scores: list[str] = []
    twice: list[str] = []
    repeated: list[str] = []
    unscored: list[str] = []
    malformed: list[str] = []
    for loc, image, labels, scores in rows:
        if image is None or (labels is None and scores is None):
            malformed.append(f"{loc}: needs an image and labels or scores")
            continue
        image_id = image_of(image)
        if image_id is None:
            unknown_images.append(repr(image))
            continue
        if image_id in out:
            twice.append(repr(image))
            continue
        ok = True
        if scores is not None:
            ids: dict[int, float] = {}
            for name, value in scores.items():
                cid = class_of(name)
                if cid is None:
                    unknown_classes.append(repr(name))
                    ok = False
                elif cid in ids:
                    repeated.append(f"{loc} {name!r}")
                    ok = False
                elif not _score_ok(value):
                    bad_scores.append(f"{loc} {name}={value!r}")
                    ok = False
                else:
                    ids[cid] = float(value)
            missing = [c for c in class_ids if c not in ids]
            if ok and missing:
                unscored.append(f"{loc} ({len(missing)} class(es), first id {missing[0]})")
                ok = False
            if ok:
                out[image_id] = MultiLabelPrediction(frozenset(c for c, s in ids.items() if s >= threshold), ids)
            continue
        chosen: set[int] = set()
        for name in labels or []:
            cid = class_of(name)
            if cid is None:
                unknown_classes.append(repr(name))
                ok = False
            elif cid in chosen:
                repeated.append(f"{loc} {name!r}")
                ok = False
            else:
                chosen.add(cid)
        if ok:
            out[image_id] = MultiLabelPrediction(frozenset(chosen))
    refuse_predictions(where, "one prediction per image of the version: a score in [0, 1] for every class of its "
                             "class map, or the predicted classes by name or id",
                       unknown_images=unknown_images, unknown_classes=unknown_classes, bad_scores=bad_scores,
                       unscored=unscored, twice=twice, repeated=repeated, malformed=malformed)
    return out


def _score_ok(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        and 0.0 <= value <= 1.0


_Row = tuple[str, Any, "list[Any] | None", "dict[Any, Any] | None"]


def _number(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


def _csv_rows(text: str, where: str) -> list[_Row]:
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader)]
    lower = [h.lower() for h in header]
    if lower[0] not in ("image", "image_id", "file_name", "path"):
        raise InputError(f"the CSV header starts with {header[0]!r}, not image", where=f"{where}, line 1",
                         fix="write a header: image,<class>,<class>,… (a score per class) or image,labels")
    by_labels = lower[1:] in (["labels"], ["label"])
    rows: list[_Row] = []
    for n, line in enumerate(reader, start=2):
        if not any(cell.strip() for cell in line):
            continue
        loc = f"line {n}"
        if len(line) != len(header):
            rows.append((loc, None, None, None))
            continue
        image = line[0].strip()
        if by_labels:
            rows.append((loc, image, [v.strip() for v in line[1].split(";") if v.strip()], None))
        else:
            rows.append((loc, image, None, {h: _number(v.strip()) for h, v in zip(header[1:], line[1:])}))
    return rows


def _json_rows(text: str, where: str) -> list[_Row]:
    try:
        data = json.loads(text)
    except ValueError as e:
        raise InputError(f"predictions are not valid JSON: {e}", where=where,
                         fix='write a JSON list of {"image": …, "scores": {class: score, …}}') from e
    if isinstance(data, dict) and isinstance(data.get("predictions"), list):
        data = data["predictions"]
    if not isinstance(data, list):
        raise InputError("multi-label predictions must be a JSON list", where=where,
                         fix='write a JSON list of {"image": …, "scores": {class: score, …}}')
    rows: list[_Row] = []
    for n, p in enumerate(data):
        loc = f"[{n}]"
        if not isinstance(p, dict):
            rows.append((loc, None, None, None))
            continue
        image = p.get("image", p.get("image_id", p.get("file_name")))
        scores, labels = p.get("scores"), p.get("labels", p.get("label"))
        if isinstance(labels, str):
            labels = [labels]
        if (scores is not None and not isinstance(scores, dict)) or (labels is not None and not isinstance(labels, list)):
            rows.append((loc, None, None, None))
            continue
        rows.append((loc, image, labels if scores is None else None, scores))
    return rows
