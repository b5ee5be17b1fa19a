"""`vault.evaluate` per task on a recorded version equals pycocotools run on the version's own COCO
export with the same predictions; bad input is refused and nothing is recorded."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lensvault.errors import InputError, LensVaultError


def _octagon(x, y, w, h):
    cx, cy = w * 0.25, h * 0.25
    return [x + cx, y, x + w - cx, y, x + w, y + cy, x + w, y + h - cy, x + w - cx, y + h, x + cx, y + h,
            x, y + h - cy, x, y + cy]


@pytest.fixture
def polygons(tmp_path) -> Path:
    """COCO polygons whose boxes straddle COCO's small/medium boundary (32² px): box area and mask
    area put them in different area ranges."""
    rng = np.random.default_rng(5)
    src = tmp_path / "src"
    (src / "images").mkdir(parents=True)
    images, anns = [], []
    for i in range(12):
        Image.new("RGB", (96, 96), (i * 10, 50, 50)).save(src / "images" / f"{i:02d}.png")
        images.append({"id": i + 1, "file_name": f"{i:02d}.png", "width": 96, "height": 96})
        for _ in range(4):
            w, h = rng.uniform(28, 40, size=2)
            x, y = rng.uniform(0, 96 - w), rng.uniform(0, 96 - h)
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": int(rng.integers(1, 3)),
                         "bbox": [x, y, w, h], "area": 0.875 * w * h, "iscrowd": 0,
                         "segmentation": [_octagon(x, y, w, h)]})
    (src / "annotations").mkdir()
    (src / "annotations" / "instances_default.json").write_text(json.dumps(
        {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}))
    return src


def _export_and_predict(vault, tmp_path: Path, iou: str):
    vault.export("shapes@1.0.0", tmp_path / "export", format="coco")
    gt_file = next((tmp_path / "export" / "annotations").glob("*.json"))
    gt = json.loads(gt_file.read_text())
    rng = np.random.default_rng(9)
    preds = []
    for a in gt["annotations"]:
        x, y, w, h = a["bbox"]
        j = rng.normal(0, 0.08, size=4)
        x, y, w, h = x + j[0] * w, y + j[1] * h, w * (1 + j[2]), h * (1 + j[3])
        p = {"image_id": a["image_id"], "category_id": a["category_id"], "score": float(rng.uniform(0.2, 1))}
        if iou == "bbox":
            p["bbox"] = [x, y, w, h]
        else:
            p["segmentation"] = [_octagon(x, y, w, h)]
        preds.append(p)
    return gt_file, preds


def _pycocotools(gt_file: Path, preds: list, iou: str) -> list[float]:
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_file))
        if iou == "segm":
            size = {i["id"]: (i["height"], i["width"]) for i in gt.dataset["images"]}
            preds = [{**p, "segmentation": mask_utils.merge(mask_utils.frPyObjects(p["segmentation"], *size[p["image_id"]]))}
                     for p in preds]
        e = COCOeval(gt, gt.loadRes(preds), iou)
        e.evaluate()
        e.accumulate()
        e.summarize()
    return [float(s) for s in e.stats]


@pytest.mark.parametrize("iou, task", [("bbox", "detection"), ("segm", "instance-segmentation")])
def test_recorded_eval_equals_pycocotools_on_the_export(vault, tmp_path, polygons, iou, task):
    vault.snapshot("shapes", polygons, version="1.0.0", format="coco")
    gt_file, preds = _export_and_predict(vault, tmp_path, iou)
    (tmp_path / "preds.json").write_text(json.dumps(preds))
    got = vault.evaluate(dataset="shapes@1.0.0", split=None, predictions=tmp_path / "preds.json", task=task).to_dict()
    ours = [-1.0 if v is None else v for v in got["overall"].values()]
    assert ours == pytest.approx(_pycocotools(gt_file, preds, iou), abs=1e-9)
    # Box areas would put some of these in another area range: the recorded numbers use COCO's area.
    assert got["overall"]["APs"] is not None and got["overall"]["APm"] is not None
    assert vault.evaluations(dataset="shapes@1.0.0").to_dict()[0]["task"] == task


def test_refused_predictions_record_nothing(vault, tmp_path, polygons):
    vault.snapshot("shapes", polygons, version="1.0.0", format="coco")
    _, preds = _export_and_predict(vault, tmp_path, "segm")
    cases = {
        "score.json": [{**preds[0], "score": 1.5}],
        "nan.json": "[" + json.dumps({**preds[0], "score": 0.5}).replace("0.5", "NaN") + "]",
        "image.json": [{**preds[0], "image_id": 999}],
        "class.json": [{**preds[0], "category_id": 7}],
        "size.json": [{**preds[0], "segmentation": {"size": [10, 10], "counts": "0" * 3}}],
        "empty.json": "",
    }
    for name, body in cases.items():
        (tmp_path / name).write_text(body if isinstance(body, str) else json.dumps(body))
        with pytest.raises(LensVaultError):
            vault.evaluate(dataset="shapes@1.0.0", split=None, predictions=tmp_path / name,
                           task="instance-segmentation")
    with pytest.raises(InputError, match="999"):
        vault.evaluate(dataset="shapes@1.0.0", split=None, predictions=tmp_path / "image.json",
                       task="instance-segmentation")
    assert vault.evaluations(dataset="shapes@1.0.0").to_dict() == []


def test_a_models_task_comes_from_its_evaluation_before_its_datas_polygons(vault, polygons):
    """COCO instances carry polygons for detectors too: the data alone says detection; an evaluation
    of the run (or --task) says what the model was judged as."""
    from lensvault.registry.task import evaluated_task, infer_task

    vault.snapshot("shapes", polygons, version="1.0.0", format="coco")
    assert infer_task(vault, "shapes@1.0.0") == "detection"
    groups = [{"source": {"kind": "run"}}, {"source": {"kind": "evaluation"}, "task": "instance-segmentation"}]
    assert evaluated_task(groups) == "instance-segmentation"
    assert evaluated_task([{"source": {"kind": "evaluation"}}]) == "detection"  # recorded before tasks
    assert evaluated_task([{"source": {"kind": "run"}}]) is None
