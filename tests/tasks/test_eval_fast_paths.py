"""What made `lensvault eval` faster must not change a number or let bad input through: the cached
mask areas and masks (written once, a damaged file recomputed, named by the version's annotations
and images; no ground-truth polygon rasterized again, no second copy of a mask), predictions checked a column at a time
(one bad prediction among many still refused and located), masks rasterized many per call and in
place (multi-ring polygons too), and the predictions' bytes read again to store (a file changed
while it was scored is refused, nothing recorded)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lensvault.errors import InputError, LensVaultError

from .test_recorded_tasks import _export_and_predict, _octagon, _pycocotools, polygons  # noqa: F401 - a fixture


def _snapshot(vault, src: Path) -> Path:
    from lensvault.evaluations.coco_areas import cache_key

    vault.snapshot("shapes", src, version="1.0.0", format="coco")
    key = cache_key(vault.dataset("shapes@1.0.0").manifest().tables)
    return vault.dir / "cache" / "areas" / f"{key}.npy"


def test_areas_are_cached_per_version_and_a_damaged_cache_is_recomputed(sqlite_vault, tmp_path, polygons):  # noqa: F811
    cache = _snapshot(sqlite_vault, polygons)
    gt_file, preds = _export_and_predict(sqlite_vault, tmp_path, "bbox")
    (tmp_path / "p.json").write_text(json.dumps(preds))
    want = _pycocotools(gt_file, preds, "bbox")

    def ours() -> list[float]:
        res = sqlite_vault.evaluate(dataset="shapes@1.0.0", split=None, predictions=tmp_path / "p.json")
        return [-1.0 if v is None else v for v in res["overall"].values()]

    assert not cache.exists()
    assert ours() == pytest.approx(want, abs=1e-9)
    export = json.loads(gt_file.read_text())["annotations"]
    assert np.load(cache).tolist() == [a["area"] for a in export]  # the export's areas, in table order
    assert ours() == pytest.approx(want, abs=1e-9)  # read from the cache
    cache.write_bytes(b"not an array")
    assert ours() == pytest.approx(want, abs=1e-9)
    assert np.load(cache).tolist() == [a["area"] for a in export]  # rewritten whole
    np.save(cache, np.zeros(3))  # another table's length: not trusted
    assert ours() == pytest.approx(want, abs=1e-9)


@pytest.mark.parametrize(("change", "where"), [
    (lambda p: p.update(score=1.5), "score 1.5"),
    (lambda p: p.update(category_id=True), "[37].category_id, is true"),
    (lambda p: p["bbox"].pop(), "bbox"),
    (lambda p: p["bbox"].__setitem__(2, "7"), "[37].bbox[2]"),
    (lambda p: p.update(image_id=12345), "12345"),
])
def test_one_bad_detection_among_many_is_refused_and_located(sqlite_vault, tmp_path, polygons, change, where):  # noqa: F811
    _snapshot(sqlite_vault, polygons)
    _, preds = _export_and_predict(sqlite_vault, tmp_path, "bbox")
    change(preds[37])
    (tmp_path / "p.json").write_text(json.dumps(preds))
    with pytest.raises(LensVaultError) as e:
        sqlite_vault.evaluate(dataset="shapes@1.0.0", split=None, predictions=tmp_path / "p.json")
    assert where in str(e.value) or where in json.dumps(e.value.details, default=str)
    assert sqlite_vault.evaluations() == []


@pytest.mark.parametrize(("change", "words"), [
    (lambda p: p["segmentation"][0].append(3.0), "polygon"),  # an odd number of values
    (lambda p: p["segmentation"][0].__setitem__(4, None), "polygon"),
    (lambda p: p.update(segmentation=[[1.0, 2.0, 3.0, 4.0]]), "polygon"),  # two points: no area
])
def test_one_bad_mask_among_many_is_refused(sqlite_vault, tmp_path, polygons, change, words):  # noqa: F811
    _snapshot(sqlite_vault, polygons)
    _, preds = _export_and_predict(sqlite_vault, tmp_path, "segm")
    change(preds[20])
    (tmp_path / "p.json").write_text(json.dumps(preds))
    with pytest.raises(InputError, match=words):
        sqlite_vault.evaluate(dataset="shapes@1.0.0", split=None, predictions=tmp_path / "p.json",
                              task="instance-segmentation")


def test_multi_ring_and_rle_masks_equal_pycocotools(sqlite_vault, tmp_path, polygons):  # noqa: F811
    from pycocotools import mask as mask_utils

    _snapshot(sqlite_vault, polygons)
    gt_file, preds = _export_and_predict(sqlite_vault, tmp_path, "segm")
    for n, p in enumerate(preds):
        if n % 3 == 1:  # two rings: the second a small square in the corner
            p["segmentation"] = p["segmentation"] + [[1.0, 1.0, 6.0, 1.0, 6.0, 6.0, 1.0, 6.0]]
        elif n % 3 == 2:  # compressed RLE
            rle = mask_utils.merge(mask_utils.frPyObjects(p["segmentation"], 96, 96))
            p["segmentation"] = {"size": [96, 96], "counts": rle["counts"].decode("ascii")}
    (tmp_path / "p.json").write_text(json.dumps(preds))
    res = sqlite_vault.evaluate(dataset="shapes@1.0.0", split=None, predictions=tmp_path / "p.json",
                                task="instance-segmentation")
    ours = [-1.0 if v is None else v for v in res["overall"].values()]
    assert ours == pytest.approx(_plain_segm(gt_file, preds), abs=1e-9)


def _plain_segm(gt_file: Path, preds: list) -> list[float]:
    """The plain pycocotools script: polygons merged into RLE, compressed RLE as given."""
    import contextlib
    import io

    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_file))
        res = []
        for p in preds:
            seg = p["segmentation"]
            if not isinstance(seg, dict):
                seg = mask_utils.merge(mask_utils.frPyObjects(seg, 96, 96))
            res.append({**p, "segmentation": seg})
        e = COCOeval(gt, gt.loadRes(res), "segm")
        e.evaluate()
        e.accumulate()
        e.summarize()
    return [float(v) for v in e.stats]


def test_a_predictions_file_changed_while_scored_is_refused(sqlite_vault, tmp_path, polygons, monkeypatch):  # noqa: F811
    import lensvault.evaluations.coco_metrics as coco_metrics

    _snapshot(sqlite_vault, polygons)
    _, preds = _export_and_predict(sqlite_vault, tmp_path, "bbox")
    path = tmp_path / "p.json"
    path.write_text(json.dumps(preds))
    scoring = coco_metrics.evaluate_detections

    def meanwhile(*args, **kwargs):  # another process rewrites the file while COCOeval runs
        path.write_text(json.dumps(preds[:5]))
        return scoring(*args, **kwargs)

    monkeypatch.setattr(coco_metrics, "evaluate_detections", meanwhile)
    with pytest.raises(InputError, match="changed while it was being scored"):
        sqlite_vault.evaluate(dataset="shapes@1.0.0", split=None, predictions=path)
    assert sqlite_vault.evaluations() == []


class _Rasterizations:
    """Counts the polygons rasterized, by pycocotools (the areas and masks of a version, predicted
    polygons) and by faster-coco-eval (what COCOeval itself turns into RLE)."""

    def __init__(self, monkeypatch) -> None:
        from faster_coco_eval.core import mask as faster_mask
        from pycocotools import mask as mask_utils

        self.polygons = 0
        fr_py_objects, calculate = mask_utils.frPyObjects, faster_mask.calculateRleForAllAnnotations

        def counted_fr_py_objects(objs, h, w):
            if isinstance(objs, list):
                self.polygons += sum(isinstance(o, list) for o in objs)
            return fr_py_objects(objs, h, w)

        def counted_calculate(anns, *args):
            self.polygons += sum(isinstance(a.get("segmentation"), list) for a in anns)
            return calculate(anns, *args)

        monkeypatch.setattr(mask_utils, "frPyObjects", counted_fr_py_objects)
        monkeypatch.setattr(faster_mask, "calculateRleForAllAnnotations", counted_calculate)


def test_mask_ap_rasterizes_no_ground_truth_polygon_once_its_masks_are_cached(
        sqlite_vault, tmp_path, polygons, monkeypatch):  # noqa: F811
    from pycocotools import mask as mask_utils

    cache = _snapshot(sqlite_vault, polygons)
    masks = cache.parent.parent / "masks" / f"{cache.stem}.json"
    gt_file, preds = _export_and_predict(sqlite_vault, tmp_path, "segm")
    for p in preds:  # predicted as RLE: any polygon rasterized is the ground truth's
        rle = mask_utils.merge(mask_utils.frPyObjects(p["segmentation"], 96, 96))
        p["segmentation"] = {"size": [96, 96], "counts": rle["counts"].decode("ascii")}
    (tmp_path / "p.json").write_text(json.dumps(preds))
    want = _plain_segm(gt_file, preds)
    counted = _Rasterizations(monkeypatch)

    def ours() -> list[float]:
        res = sqlite_vault.evaluate(dataset="shapes@1.0.0", split=None, predictions=tmp_path / "p.json",
                                    task="instance-segmentation")
        return [-1.0 if v is None else v for v in res["overall"].values()]

    assert ours() == pytest.approx(want, abs=1e-9)
    assert counted.polygons == 48  # each of the version's polygons once: its area and its mask
    assert masks.is_file() and cache.is_file()
    counted.polygons = 0
    assert ours() == pytest.approx(want, abs=1e-9)
    assert counted.polygons == 0  # from the cache: COCOeval rasterized none either
    masks.write_bytes(masks.read_bytes()[:-9] + b'"AAAAA"]')  # damaged: its digest no longer matches
    assert ours() == pytest.approx(want, abs=1e-9)
    assert counted.polygons == 48  # recomputed, and written whole again
    counted.polygons = 0
    assert ours() == pytest.approx(want, abs=1e-9)
    assert counted.polygons == 0


def test_mask_ap_holds_one_copy_of_each_mask(polygons):  # noqa: F811
    """faster-coco-eval's COCOeval reads each mask from ``rle``: it is the annotation's own
    ``segmentation``, not a second copy of it (its own _prepare decodes and re-encodes every one)."""
    from pycocotools import mask as mask_utils

    from lensvault.evaluations.coco_metrics import evaluate_detections

    gt = json.loads((polygons / "annotations" / "instances_default.json").read_text())
    for a in gt["annotations"]:
        rle = mask_utils.merge(mask_utils.frPyObjects(a["segmentation"], 96, 96))
        a["segmentation"] = {"size": [96, 96], "counts": rle["counts"].decode("ascii")}
        a["area"] = float(mask_utils.area(rle))
    preds = [{"image_id": a["image_id"], "category_id": a["category_id"], "segmentation": [_octagon(*a["bbox"])],
              "score": 0.5} for a in gt["annotations"]]
    res = evaluate_detections(gt, preds, iou_type="segm", backend="faster", owned=True)
    assert res["overall"]["AP"] is not None
    for ann in gt["annotations"] + preds:
        assert ann["rle"] is ann["segmentation"]
        assert isinstance(ann["segmentation"], dict)  # the predicted polygon, replaced by its RLE


def test_cached_areas_and_masks_belong_to_the_image_sizes_too(sqlite_vault, tmp_path, polygons):  # noqa: F811
    """The same annotations on smaller images (their polygons clipped to the frame) have other areas
    and masks: version 2 is not scored with version 1's."""
    import shutil

    from PIL import Image

    _snapshot(sqlite_vault, polygons)
    small = tmp_path / "small"
    shutil.copytree(polygons, small)
    coco = json.loads((small / "annotations" / "instances_default.json").read_text())
    for im in coco["images"]:
        Image.new("RGB", (64, 64), (9, 9, 9)).save(small / "images" / im["file_name"])
        im["width"] = im["height"] = 64
    (small / "annotations" / "instances_default.json").write_text(json.dumps(coco))
    sqlite_vault.snapshot("shapes", small, version="2.0.0", format="coco")
    v1, v2 = (sqlite_vault.dataset(f"shapes@{v}").manifest().tables for v in ("1.0.0", "2.0.0"))
    assert v1["annotations"]["oid"] == v2["annotations"]["oid"]  # the annotations table is the same object
    sqlite_vault.export("shapes@2.0.0", tmp_path / "export2", format="coco")
    gt_file = next((tmp_path / "export2" / "annotations").glob("*.json"))
    preds = [{"image_id": a["image_id"], "category_id": a["category_id"], "score": 0.9,
              "bbox": [a["bbox"][0] + 1, a["bbox"][1], a["bbox"][2], a["bbox"][3]]}
             for a in json.loads(gt_file.read_text())["annotations"]]
    (tmp_path / "p.json").write_text(json.dumps(preds))
    for iou, task in (("bbox", "detection"), ("segm", "instance-segmentation")):
        if iou == "segm":
            seg = [{**{k: v for k, v in p.items() if k != "bbox"},
                    "segmentation": [_octagon(*p["bbox"])]} for p in preds]
            (tmp_path / "p.json").write_text(json.dumps(seg))
            want = _plain_segm_sized(gt_file, seg, 64)
        else:
            want = _pycocotools(gt_file, preds, "bbox")
        for version in ("1.0.0", "2.0.0"):  # version 1 first: its cache filled
            res = sqlite_vault.evaluate(dataset=f"shapes@{version}", split=None, predictions=tmp_path / "p.json",
                                        task=task)
        ours = [-1.0 if v is None else v for v in res["overall"].values()]
        assert ours == pytest.approx(want, abs=1e-9), iou


def _plain_segm_sized(gt_file: Path, preds: list, size: int) -> list[float]:
    import contextlib
    import io

    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_file))
        res = [{**p, "segmentation": mask_utils.merge(mask_utils.frPyObjects(p["segmentation"], size, size))}
               for p in preds]
        e = COCOeval(gt, gt.loadRes(res), "segm")
        e.evaluate()
        e.accumulate()
        e.summarize()
    return [float(v) for v in e.stats]
