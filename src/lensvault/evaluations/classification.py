"""Image classification metrics: accuracy, top-k, per-class precision/recall/F1, macro and micro
averages and the confusion matrix; overall, per class and per slice of tagged images.

Each image has one ground-truth label (the version's image label) and one prediction: a label with
its score, or a score per class (the label is then the highest-scoring class, and top-k is
defined). Definitions (as scikit-learn's, single-label):

* accuracy = correct / images; top-k = images whose true class is among the k highest scores;
* precision(c) = TP / predicted as c, recall(c) = TP / truly c, F1 = 2PR / (P + R), each None
  where its denominator is 0;
* macro = the unweighted mean over the classes that occur in the ground truth or the predictions
  (a None precision there counts as 0, as scikit-learn's ``zero_division=0``);
* micro precision = recall = F1 = accuracy (every image has exactly one true and one predicted class).
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

__all__ = ["ClassPrediction", "evaluate_classification", "parse_predictions"]

DEFAULT_TOP_K = 5


@dataclass(frozen=True)
class ClassPrediction:
    """One image's prediction: its label (class id), the label's score and, when given, a score
    per class id."""

    label: int
    score: float | None
    scores: dict[int, float] | None = None



def evaluate_classification(
    truth: Mapping[Any, int],
    predictions: Mapping[Any, ClassPrediction],
    class_ids: Sequence[int],
    names: Sequence[str],
    *,
    top_k: int = DEFAULT_TOP_K,
    image_tags: Mapping[Any, Mapping[str, Any]] | None = None,
    slice_keys: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Metrics of ``predictions`` (by image id) against ``truth`` (image id → class id); every image
    of ``truth`` must have a prediction (the caller checked)."""
    from lensvault.evaluations.coco_metrics import _slices

    image_ids = list(truth)
    result = _metrics(image_ids, truth, predictions, class_ids, names, top_k)
    result["per_slice"] = {}
    for name, ids in _slices(image_tags, slice_keys, image_ids).items():
        sliced = _metrics(ids, truth, predictions, class_ids, names, top_k)
        result["per_slice"][name] = {**sliced["overall"], "images": len(ids)}
    result["counts"] = {"images": len(image_ids), "categories": len(class_ids), "top_k": top_k,
                        "with_scores": sum(1 for i in image_ids if predictions[i].scores is not None)}
    return result


def _metrics(ids: Sequence[Any], truth: Mapping[Any, int], predictions: Mapping[Any, ClassPrediction],
             class_ids: Sequence[int], names: Sequence[str], top_k: int) -> dict[str, Any]:
    k = len(class_ids)
    pos = {cid: i for i, cid in enumerate(class_ids)}
    cm = [[0] * k for _ in range(k)]
    top_hits = 0
    all_scored = bool(ids) and all(predictions[i].scores is not None for i in ids)
    for i in ids:
        pred = predictions[i]
        cm[pos[truth[i]]][pos[pred.label]] += 1
        if all_scored and pred.scores is not None:
            ranked = sorted(pred.scores, key=lambda c: (-pred.scores[c], pos[c]))  # type: ignore[index]
            top_hits += truth[i] in ranked[:top_k]
    n = len(ids)
    correct = sum(cm[j][j] for j in range(k))
    per_class: dict[str, dict[str, Any]] = {}
    macro_p, macro_r, macro_f = [], [], []
    for j, (cid, name) in enumerate(zip(class_ids, names)):
        tp = cm[j][j]
        support = sum(cm[j])
        predicted = sum(row[j] for row in cm)
        precision = tp / predicted if predicted else None
        recall = tp / support if support else None
        f1 = (2 * precision * recall / (precision + recall) if precision is not None and recall is not None
              and precision + recall > 0 else (0.0 if precision is not None or recall is not None else None))
        key = name if list(names).count(name) == 1 else f"{name}#{cid}"
        per_class[key] = {"precision": precision, "recall": recall, "F1": f1, "support": support,
                          "predicted": predicted}
        if support or predicted:
            macro_p.append(precision or 0.0)
            macro_r.append(recall or 0.0)
            macro_f.append(f1 or 0.0)
    accuracy = correct / n if n else None
    overall = {
        "accuracy": accuracy,
        f"top{top_k}_accuracy": top_hits / n if n and all_scored else None,
        "macro_precision": sum(macro_p) / len(macro_p) if macro_p else None,
        "macro_recall": sum(macro_r) / len(macro_r) if macro_r else None,
        "macro_F1": sum(macro_f) / len(macro_f) if macro_f else None,
        "micro_precision": accuracy, "micro_recall": accuracy, "micro_F1": accuracy,
    }
    return {"overall": overall, "per_class": per_class,
            "confusion_matrix": {"classes": list(per_class), "counts": cm}}


# --------------------------------------------------------------------------- predictions file


def parse_predictions(raw: bytes, where: str, *, image_of, class_of) -> dict[Any, ClassPrediction]:
    """Predictions by image id from a CSV or JSON file (see docs/runs.md):

    * CSV ``image,label[,score]`` (one row per image), or ``image,<class>,<class>,…`` (a score
      per class, the header naming every class);
    * JSON: a list of ``{"image": …, "label": …, "score": …}`` or ``{"image": …, "scores":
      {class: score, …}}`` (``image_id`` or ``file_name`` may name the image).

    ``image_of(text_or_id)`` / ``class_of(text_or_id)`` resolve names to ids or return None.
    Everything wrong is refused, the offenders listed: unknown images or classes, a score outside
    [0, 1] or not a number (NaN too), two predictions for one image, an empty file.
    """
    text = raw.decode("utf-8-sig", errors="replace").strip()
    if not text:
        raise InputError("the predictions file is empty", where=where,
                         fix="write one prediction per image: image,label,score (CSV) or a JSON list")
    rows = _json_rows(text, where) if text[0] in "[{" else _csv_rows(text, where)
    if not rows:
        raise InputError("the predictions file has no predictions", where=where,
                         fix="write one prediction per image: image,label,score (CSV) or a JSON list")
    out: dict[Any, ClassPrediction] = {}
    unknown_images, unknown_classes, bad_scores, twice, malformed = [], [], [], [], []
    for loc, image, label, score, scores in rows:
        if image is None or (label is None and scores is None):
            malformed.append(f"{loc}: needs an image and a label or scores")
            continue
        image_id = image_of(image)
        if image_id is None:
            unknown_images.append(repr(image))
            continue
        if image_id in out:
            twice.append(repr(image))
            continue
        ids: dict[int, float] | None = None
        if scores is not None:
            ids = {}
            for name, value in scores.items():
                cid = class_of(name)
                if cid is None:
                    unknown_classes.append(repr(name))
                elif not _score_ok(value):
                    bad_scores.append(f"{loc} {name}={value!r}")
                else:
                    ids[cid] = float(value)
            if not ids or len(ids) != len(scores):
                continue
        if label is not None:
            cid = class_of(label)
            if cid is None:
                unknown_classes.append(repr(label))
                continue
        else:
            assert ids is not None
            cid = max(ids, key=ids.__getitem__)
            score = ids[cid]
        if score is not None and not _score_ok(score):
            bad_scores.append(f"{loc}={score!r}")
            continue
        out[image_id] = ClassPrediction(cid, None if score is None else float(score), ids)
    refuse_predictions(where, "one prediction per image of the version, classes by name or id of its class map, "
                             "scores finite numbers in [0, 1]",
                       unknown_images=unknown_images, unknown_classes=unknown_classes, bad_scores=bad_scores,
                       twice=twice, malformed=malformed)
    return out


def _score_ok(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return False
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        and 0.0 <= value <= 1.0


_Row = tuple[str, Any, Any, Any, "dict[Any, Any] | None"]


def _csv_rows(text: str, where: str) -> list[_Row]:
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader)]
    lower = [h.lower() for h in header]
    if not lower or lower[0] not in ("image", "image_id", "file_name", "path"):
        raise InputError(f"the CSV header starts with {header[0]!r}, not image", where=f"{where}, line 1",
                         fix="write a header: image,label,score — or image,<class>,<class>,… for a score per class")
    rows: list[_Row] = []
    by_label = "label" in lower
    for n, line in enumerate(reader, start=2):
        if not any(cell.strip() for cell in line):
            continue
        loc = f"line {n}"
        if len(line) != len(header):
            rows.append((loc, None, None, None, None))
            continue
        cells = dict(zip(lower, (c.strip() for c in line)))
        image = cells[lower[0]]
        if by_label:
            score = cells.get("score")
            rows.append((loc, image, cells["label"], _number(score) if score not in (None, "") else None, None))
        else:
            rows.append((loc, image, None, None, {h: _number(v) for h, v in zip(header[1:], line[1:])}))
    return rows


def _number(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


def _json_rows(text: str, where: str) -> list[_Row]:
    try:
        data = json.loads(text)
    except ValueError as e:
        raise InputError(f"predictions are not valid JSON: {e}", where=where,
                         fix='write a JSON list of {"image": …, "label": …, "score": …}') from e
    if isinstance(data, dict) and isinstance(data.get("predictions"), list):
        data = data["predictions"]
    if not isinstance(data, list):
        raise InputError("classification predictions must be a JSON list", where=where,
                         fix='write a JSON list of {"image": …, "label": …, "score": …}')
    rows: list[_Row] = []
    for n, p in enumerate(data):
        loc = f"[{n}]"
        if not isinstance(p, dict):
            rows.append((loc, None, None, None, None))
            continue
        image = p.get("image", p.get("image_id", p.get("file_name")))
        label = p.get("label", p.get("category_name", p.get("category_id")))
        scores = p.get("scores")
        if scores is not None and not isinstance(scores, dict):
            rows.append((loc, None, None, None, None))
            continue
        rows.append((loc, image, label, p.get("score"), scores))
    return rows
