"""What made `lensvault eval` faster must not change a number or let bad input through: the cached
mask areas (written once, a damaged file recomputed), predictions checked a column at a time
(one bad prediction among many still refused and located), masks rasterized many per call and in
place (multi-ring polygons too), and the predictions' bytes read again to store (a file changed
while it was scored is refused, nothing recorded)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lensvault.errors import InputError, LensVaultError

from .test_recorded_tasks import _export_and_predict, _pycocotools, polygons  # noqa: F401 - a fixture


def _snapshot(vault, src: Path) -> Path:
    vault.snapshot("shapes", src, version="1.0.0", format="coco")
    oid = vault.dataset("shapes@1.0.0").manifest().tables["annotations"]["oid"]
    return vault.dir / "cache" / "areas" / f"{oid}.npy"


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
