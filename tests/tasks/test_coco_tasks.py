"""Mask AP (iouType "segm") and keypoint OKS AP against pycocotools itself, on real samples (the BCCD
subset's cells as polygons, the format samples' COCO keypoints) with simulated predictions, through
both COCOeval backends."""

from __future__ import annotations

import contextlib
import copy
import io
import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from lensvault.errors import InputError
from lensvault.evaluations.coco_metrics import COCO_KEYPOINT_SIGMAS, KEYPOINT_KEYS, OVERALL_KEYS, evaluate_detections
from tests.runs_parts.test_evaluation import _bccd_test_split_as_coco

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "format-samples"


def _reference(gt: dict, preds: list[dict], iou_type: str, sigmas=None, img_ids=None) -> np.ndarray:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(copy.deepcopy(preds))
        evaluator = COCOeval(coco_gt, coco_dt, iou_type)
        if sigmas is not None:
            evaluator.params.kpt_oks_sigmas = np.array(sigmas)
        if img_ids is not None:
            evaluator.params.imgIds = img_ids
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats


def _octagon(x, y, w, h, cut=0.25):
    cx, cy = w * cut, h * cut
    return [x + cx, y, x + w - cx, y, x + w, y + cy, x + w, y + h - cy, x + w - cx, y + h, x + cx, y + h,
            x, y + h - cy, x, y + cy]


@pytest.fixture(scope="module")
def cells() -> dict:
    """The BCCD cells as octagon polygons: a real layout of ~870 touching and overlapping masks."""
    gt = _bccd_test_split_as_coco()
    sizes = {im["id"]: (im["height"], im["width"]) for im in gt["images"]}
    for ann in gt["annotations"]:
        ann["segmentation"] = [_octagon(*ann["bbox"])]
        h, w = sizes[ann["image_id"]]
        ann["area"] = float(mask_utils.area(mask_utils.merge(mask_utils.frPyObjects(ann["segmentation"], h, w))))
    return gt


def _mask_predictions(gt: dict, *, as_rle: bool, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    sizes = {im["id"]: (im["height"], im["width"]) for im in gt["images"]}
    preds = []
    for ann in gt["annotations"]:
        if rng.random() < 0.1:
            continue
        x, y, w, h = ann["bbox"]
        j = rng.normal(0, 0.1, size=4)
        poly = _octagon(x + j[0] * w, y + j[1] * h, max(2.0, w * (1 + j[2])), max(2.0, h * (1 + j[3])),
                        cut=float(rng.uniform(0.1, 0.4)))
        category = ann["category_id"] if rng.random() > 0.05 else int(rng.integers(1, 4))
        seg: object = [[float(v) for v in poly]]
        if as_rle:
            hh, ww = sizes[ann["image_id"]]
            rle = mask_utils.merge(mask_utils.frPyObjects(seg, hh, ww))
            rle["counts"] = rle["counts"].decode("ascii")
            seg = rle
        preds.append({"image_id": ann["image_id"], "category_id": category, "segmentation": seg,
                      "score": float(rng.uniform(0.3, 1.0))})
    return preds


def _as_rle(preds: list[dict], gt: dict) -> list[dict]:
    """What a pycocotools user does with polygon results (loadRes measures an RLE's area only)."""
    sizes = {im["id"]: (im["height"], im["width"]) for im in gt["images"]}
    out = []
    for p in preds:
        h, w = sizes[p["image_id"]]
        rle = mask_utils.merge(mask_utils.frPyObjects(p["segmentation"], h, w))
        rle["counts"] = rle["counts"].decode("ascii")
        out.append({**p, "segmentation": rle})
    return out


def _values(overall: dict, keys) -> np.ndarray:
    return np.array([-1.0 if overall[k] is None else overall[k] for k in keys])


@pytest.mark.parametrize("backend", ["faster", "pycocotools"])
@pytest.mark.parametrize("as_rle", [False, True], ids=["polygons", "rle"])
def test_mask_ap_equals_pycocotools(cells, backend, as_rle):
    preds = _mask_predictions(cells, as_rle=as_rle)
    reference = _reference(cells, preds if as_rle else _as_rle(preds, cells), "segm")
    got = evaluate_detections(cells, preds, iou_type="segm", backend=backend)
    assert 0.2 < got["overall"]["AP"] < 0.95  # a plausible model, not a degenerate case
    np.testing.assert_allclose(_values(got["overall"], OVERALL_KEYS), reference, rtol=0, atol=1e-9)
    assert got["iou_type"] == "segm"
    assert got["backend"] == ("faster-coco-eval" if backend == "faster" else "pycocotools")


def test_mask_ap_differs_from_box_ap(cells):
    """The masks are scored, not their boxes: octagons of other cut sizes overlap less than boxes."""
    preds = _mask_predictions(cells, as_rle=False)
    segm = evaluate_detections(cells, preds, iou_type="segm")
    boxes = [{**p, "bbox": list(mask_utils.toBbox(r["segmentation"]))}
             for p, r in zip(preds, _as_rle(preds, cells))]
    bbox = evaluate_detections(cells, [{k: v for k, v in p.items() if k != "segmentation"} for p in boxes])
    assert abs(segm["overall"]["AP"] - bbox["overall"]["AP"]) > 1e-3


def test_mask_ap_per_slice_equals_pycocotools_on_the_slice(cells):
    preds = _mask_predictions(cells, as_rle=True, seed=3)
    ids = sorted(im["id"] for im in cells["images"])
    tags = {i: {"half": "a" if n % 2 else "b"} for n, i in enumerate(ids)}
    got = evaluate_detections(cells, preds, iou_type="segm", image_tags=tags)
    a = [i for i in ids if tags[i]["half"] == "a"]
    assert got["per_slice"]["half=a"]["AP"] == pytest.approx(_reference(cells, preds, "segm", img_ids=a)[0], abs=1e-9)


def _sample_keypoints() -> dict:
    with open(SAMPLES / "coco_dataset/coco_person_keypoints/annotations/person_keypoints_val.json") as f:
        return json.load(f)


def _person_gt(seed: int = 1) -> dict:
    """17-point people (COCO's default sigmas apply) laid on the BCCD image frames."""
    rng = np.random.default_rng(seed)
    base = _bccd_test_split_as_coco()
    anns = []
    for ann in base["annotations"][:400]:
        x, y, w, h = ann["bbox"]
        kps = []
        for _ in range(17):
            v = int(rng.choice([0, 1, 2], p=[0.15, 0.25, 0.6]))
            kps += [float(x + rng.uniform(0, w)), float(y + rng.uniform(0, h)), v] if v else [0.0, 0.0, 0]
        anns.append({**ann, "category_id": 1, "keypoints": kps, "num_keypoints": sum(1 for v in kps[2::3] if v)})
    cats = [{"id": 1, "name": "person", "keypoints": [f"p{i}" for i in range(17)], "skeleton": []}]
    return {"images": base["images"], "annotations": anns, "categories": cats}


def _pose_predictions(gt: dict, seed: int = 2, spread: float = 4.0) -> list[dict]:
    rng = np.random.default_rng(seed)
    preds = []
    for ann in gt["annotations"]:
        if rng.random() < 0.1:
            continue
        kps = ann["keypoints"]
        k = len(kps) // 3
        noisy = []
        for i in range(k):
            noisy += [float(kps[3 * i] + rng.normal(0, spread)), float(kps[3 * i + 1] + rng.normal(0, spread)), 1.0]
        preds.append({"image_id": ann["image_id"], "category_id": ann["category_id"], "keypoints": noisy,
                      "score": float(rng.uniform(0.2, 1.0))})
    return preds


@pytest.mark.parametrize("backend", ["faster", "pycocotools"])
def test_keypoint_oks_ap_with_coco_sigmas_equals_pycocotools(backend):
    gt = _person_gt()
    preds = _pose_predictions(gt)
    reference = _reference(gt, preds, "keypoints")
    got = evaluate_detections(gt, preds, iou_type="keypoints", backend=backend)
    assert 0.05 < got["overall"]["AP"] < 0.95
    np.testing.assert_allclose(_values(got["overall"], KEYPOINT_KEYS), reference, rtol=0, atol=1e-9)
    assert got["kpt_oks_sigmas"] == pytest.approx(list(COCO_KEYPOINT_SIGMAS))


@pytest.mark.parametrize("backend", ["faster", "pycocotools"])
def test_keypoint_oks_ap_with_the_datasets_sigmas_on_the_coco_sample(backend):
    """The format sample's 3-point categories: COCO's 17 sigmas do not apply, the dataset's do."""
    gt = _sample_keypoints()
    preds = _pose_predictions(gt, spread=0.3)
    sigmas = [0.05, 0.08, 0.1]
    with pytest.raises(InputError, match="3 points, COCO's default sigmas are for 17"):
        evaluate_detections(gt, preds, iou_type="keypoints", backend=backend)
    got = evaluate_detections(gt, preds, iou_type="keypoints", kpt_sigmas=sigmas, backend=backend)
    reference = _reference(gt, preds, "keypoints", sigmas=sigmas)
    np.testing.assert_allclose(_values(got["overall"], KEYPOINT_KEYS), reference, rtol=0, atol=1e-9)
    with pytest.raises(InputError, match="2 OKS sigmas given, but keypoints have 3 points"):
        evaluate_detections(gt, preds, iou_type="keypoints", kpt_sigmas=[0.1, 0.1], backend=backend)


def test_mask_of_the_wrong_size_is_refused_with_its_sizes(cells):
    preds = _mask_predictions(cells, as_rle=True)[:3]
    preds[1] = {**preds[1], "segmentation": {"size": [10, 20], "counts": mask_utils.encode(
        np.asfortranarray(np.ones((10, 20), dtype=np.uint8)))["counts"].decode("ascii")}}
    with pytest.raises(InputError) as e:
        evaluate_detections(cells, preds, iou_type="segm")
    assert "predictions[1], is 20x10, its image 640x480" in str(e.value)


@pytest.mark.parametrize("iou_type", ["bbox", "segm", "keypoints"])
@pytest.mark.parametrize("score, words", [(1.5, "outside [0, 1]"), (-0.1, "outside [0, 1]"),
                                          (float("nan"), "not a finite number")])
def test_scores_outside_0_1_or_nan_are_refused(cells, iou_type, score, words):
    gt = _person_gt() if iou_type == "keypoints" else cells
    preds = (_pose_predictions(gt) if iou_type == "keypoints" else _mask_predictions(cells, as_rle=True))[:4]
    if iou_type == "bbox":
        preds = [{**p, "bbox": [1, 1, 5, 5]} for p in preds]
    preds[2] = {**preds[2], "score": score}
    with pytest.raises(InputError) as e:
        evaluate_detections(gt, preds, iou_type=iou_type)
    assert "predictions[2]" in str(e.value) and words in str(e.value)


def test_malformed_segmentation_and_keypoints_are_located(cells):
    preds = _mask_predictions(cells, as_rle=False)[:3]
    preds[0] = {**preds[0], "segmentation": [[1, 2, 3]]}
    with pytest.raises(InputError, match=r"predictions\[0\], has a polygon"):
        evaluate_detections(cells, preds, iou_type="segm")
    gt = _person_gt()
    poses = _pose_predictions(gt)[:3]
    poses[2] = {**poses[2], "keypoints": [1.0, 2.0]}
    with pytest.raises(InputError, match=r"predictions\[2\], has keypoints"):
        evaluate_detections(gt, poses, iou_type="keypoints")


def test_predicted_polygons_rasterized_in_two_processes_equal_pycocotools(cells, monkeypatch):
    """Many polygons: half rasterized in a forked child. Same masks, same numbers, and the order of
    the results kept (a ring's RLE lands on its own prediction)."""
    import lensvault.evaluations.coco_metrics as coco_metrics
    from lensvault import parallel

    monkeypatch.setattr(coco_metrics, "PARALLEL_RINGS", 10)
    monkeypatch.setenv("LENSVAULT_WORKERS", "2")
    forked: list[int | None] = []
    start = parallel.ForkedCall.__init__

    def recorded(self, *args, **kwargs):
        start(self, *args, **kwargs)
        forked.append(self._pid)

    monkeypatch.setattr(parallel.ForkedCall, "__init__", recorded)
    preds = _mask_predictions(cells, as_rle=False, seed=7)
    got = evaluate_detections(cells, copy.deepcopy(preds), iou_type="segm")
    if hasattr(__import__("os"), "fork"):
        assert len(forked) == 1 and forked[0] is not None  # a child did the second half
    np.testing.assert_allclose(_values(got["overall"], OVERALL_KEYS), _reference(cells, _as_rle(preds, cells), "segm"),
                               rtol=0, atol=1e-9)
    owned = copy.deepcopy(preds)
    evaluate_detections(cells, owned, iou_type="segm", owned=True)
    assert [p["segmentation"]["counts"] for p in owned] == [r["segmentation"]["counts"] for r in _as_rle(preds, cells)]
