"""COCOeval split by classes between this process and a forked child (evaluations.class_halves):
the same overall, per-class and per-slice numbers as one evaluation and as pycocotools — with the
fork, without fork (the halves in turn) and with one CPU (no split) — for boxes, masks and poses."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from lensvault import parallel
from lensvault.evaluations import class_halves
from lensvault.evaluations.coco_metrics import KEYPOINT_KEYS, OVERALL_KEYS, evaluate_detections
from tests.tasks.test_coco_tasks import (
    _as_rle,
    _mask_predictions,
    _person_gt,
    _pose_predictions,
    _reference,
    _values,
    cells,  # noqa: F401 - the fixture
)


def _two_kinds_of_people() -> dict:
    """The 17-point people in two classes (every other one), so that there are classes to split."""
    gt = _person_gt()
    gt["categories"] = [gt["categories"][0], {**gt["categories"][0], "id": 2, "name": "rider"}]
    for n, ann in enumerate(gt["annotations"]):
        ann["category_id"] = 1 + n % 2
    return gt


def _case(kind: str, cells: dict) -> tuple[dict, list[dict], np.ndarray]:  # noqa: F811
    """Ground truth, predictions and pycocotools' stats of one kind of evaluation."""
    if kind == "keypoints":
        gt = _two_kinds_of_people()
        preds = _pose_predictions(gt)
        return gt, preds, _reference(gt, preds, "keypoints")
    preds = _mask_predictions(cells, as_rle=False, seed=11)
    if kind == "bbox":
        from pycocotools import mask as mask_utils

        boxes = [{k: v for k, v in p.items() if k != "segmentation"}
                 | {"bbox": [float(v) for v in mask_utils.toBbox(r["segmentation"])]}
                 for p, r in zip(preds, _as_rle(preds, cells))]
        return cells, boxes, _reference(cells, boxes, "bbox")
    return cells, preds, _reference(cells, _as_rle(preds, cells), "segm")


def _tags(gt: dict) -> dict:
    ids = sorted(im["id"] for im in gt["images"])
    return {i: {"half": "a" if n % 2 else "b"} for n, i in enumerate(ids)}


@pytest.fixture
def forks(monkeypatch) -> list[int | None]:
    """The pid of every ForkedCall's child (None: it ran in-process)."""
    seen: list[int | None] = []
    start = parallel.ForkedCall.__init__

    def recorded(self, *args, **kwargs):
        start(self, *args, **kwargs)
        seen.append(self._pid)

    monkeypatch.setattr(parallel.ForkedCall, "__init__", recorded)
    return seen


@pytest.mark.parametrize("kind", ["bbox", "segm", "keypoints"])
def test_classes_split_between_two_processes_give_one_evaluations_numbers(cells, kind, monkeypatch, forks):  # noqa: F811
    gt, preds, reference = _case(kind, cells)
    iou_type = kind
    keys = KEYPOINT_KEYS if kind == "keypoints" else OVERALL_KEYS

    def run(workers: str, threshold: int) -> dict:
        monkeypatch.setenv("LENSVAULT_WORKERS", workers)
        monkeypatch.setattr(class_halves, "PARALLEL_ANNOTATIONS", threshold)
        forks.clear()
        got = evaluate_detections(gt, copy.deepcopy(preds), iou_type=iou_type, image_tags=_tags(gt))
        got.pop("backend")
        return got

    whole = run("2", 10**9)  # too few annotations to split: one evaluation
    assert forks == []
    split = run("2", 10)  # the overall evaluation and each slice's: half of the classes in a child
    assert len(forks) == 3 and all(pid is not None for pid in forks)
    assert split == whole  # exactly: per class, per slice, every stat
    one_cpu = run("1", 10)
    assert forks == [] and one_cpu == whole
    np.testing.assert_allclose(_values(split["overall"], keys), reference, rtol=0, atol=1e-9)
    assert len(split["per_class"]) == len(gt["categories"])


def test_without_fork_the_halves_run_in_turn_with_the_same_numbers(cells, monkeypatch, forks):  # noqa: F811
    gt, preds, reference = _case("segm", cells)
    monkeypatch.setenv("LENSVAULT_WORKERS", "2")
    whole = evaluate_detections(gt, copy.deepcopy(preds), iou_type="segm", image_tags=_tags(gt))
    monkeypatch.setattr(class_halves, "PARALLEL_ANNOTATIONS", 10)
    monkeypatch.setattr(parallel, "_can_fork", lambda: False)
    forks.clear()
    in_turn = evaluate_detections(gt, copy.deepcopy(preds), iou_type="segm", image_tags=_tags(gt))
    assert forks and all(pid is None for pid in forks)  # split, but nothing forked
    assert in_turn == whole
    np.testing.assert_allclose(_values(in_turn["overall"], OVERALL_KEYS), reference, rtol=0, atol=1e-9)


class _Coco:
    def __init__(self, classes: list[int]) -> None:
        self.anns = {n: {"image_id": n % 7, "category_id": c} for n, c in enumerate(classes)}


def test_the_halves_are_every_class_once_balanced_by_annotations(monkeypatch):
    monkeypatch.setenv("LENSVAULT_WORKERS", "2")
    monkeypatch.setattr(class_halves, "PARALLEL_ANNOTATIONS", 10)
    gt = _Coco([1] * 50 + [2] * 30 + [3] * 20 + [4] * 10 + [5] * 5)
    dt = _Coco([1] * 40 + [2] * 40 + [3] * 10 + [6] * 5)
    halves = class_halves.class_halves(gt, dt, [1, 2, 3, 4, 5, 6, 7])
    assert halves is not None
    a, b = halves
    assert sorted(a + b) == [1, 2, 3, 4, 5, 6, 7] and a == sorted(a) and b == sorted(b)
    work = {1: 90, 2: 70, 3: 30, 4: 10, 5: 5, 6: 5, 7: 0}
    assert abs(sum(work[c] for c in a) - sum(work[c] for c in b)) <= 10
    assert halves == class_halves.class_halves(gt, dt, [7, 6, 5, 4, 3, 2, 1])  # the same split every time
    # Nothing to split: one class with annotations, too few annotations (on the images evaluated), one CPU.
    assert class_halves.class_halves(_Coco([1] * 30), _Coco([1] * 30), [1, 2]) is None
    monkeypatch.setattr(class_halves, "PARALLEL_ANNOTATIONS", 100)
    assert class_halves.class_halves(gt, dt, [1, 2, 3, 4, 5, 6, 7], image_ids=[0, 1]) is None
    assert class_halves.class_halves(gt, dt, [1, 2, 3, 4, 5, 6, 7]) is not None
    monkeypatch.setenv("LENSVAULT_WORKERS", "1")
    assert class_halves.class_halves(gt, dt, [1, 2, 3, 4, 5, 6, 7]) is None
