"""COCO-style AP50 for the demo, computed by pycocotools' reference COCOeval."""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lensvault.demo.detector import Model


def predict_results(
    model: Model, images_dir: Path | str, coco: Mapping[str, Any], image_ids: Iterable[int]
) -> list[dict[str, Any]]:
    """Detections on ``image_ids`` in COCO results format (image_id, category_id, bbox, score)."""
    wanted = set(image_ids)
    results: list[dict[str, Any]] = []
    for info in sorted(coco["images"], key=lambda i: i["id"]):
        if info["id"] not in wanted:
            continue
        for bbox, category_id, score in model.predict(Path(images_dir) / info["file_name"]):
            results.append(
                {
                    "image_id": int(info["id"]),
                    "category_id": category_id,
                    "bbox": [round(v, 2) for v in bbox],
                    "score": round(score, 5),
                }
            )
    return results


def ap50(
    coco: Mapping[str, Any], results: list[dict[str, Any]], image_ids: Iterable[int]
) -> dict[str, Any]:
    """AP at IoU 0.5 over ``image_ids``, overall and per category name."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    ids = sorted(set(image_ids))
    names = {int(c["id"]): str(c["name"]) for c in coco["categories"]}
    kept = [r for r in results if r["image_id"] in set(ids)]
    if not ids or not kept:
        present = {a["category_id"] for a in coco["annotations"] if a["image_id"] in set(ids)}
        return {"ap50": 0.0, "per_class": {names[c]: 0.0 for c in sorted(present)}, "images": len(ids)}
    # pycocotools prints progress unconditionally; it would drown the training log.
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO()
        truth.dataset = copy.deepcopy(dict(coco))
        truth.createIndex()
        detections = truth.loadRes(copy.deepcopy(kept))
        evaluator = COCOeval(truth, detections, iouType="bbox")
        evaluator.params.imgIds = ids
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    # precision: [iou, recall, category, area range, max dets]; iou 0 = 0.5, area 0 = all,
    # max dets 2 = 100.
    precision = evaluator.eval["precision"][0, :, :, 0, 2]
    per_class: dict[str, float] = {}
    for column, category_id in enumerate(evaluator.params.catIds):
        values = precision[:, column]
        values = values[values > -1]
        if values.size:  # -1 everywhere: no such object in these images, nothing to score
            per_class[names[category_id]] = float(values.mean())
    return {"ap50": max(float(evaluator.stats[1]), 0.0), "per_class": per_class, "images": len(ids)}

