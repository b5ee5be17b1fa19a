"""Evaluations against pycocotools, bad predictions, standalone start_run, and the public API."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lensvault.errors import InputError, PreflightFailed


def _predictions_from_gt(gt: dict, *, jitter: float = 0.0) -> list[dict]:
    preds = []
    for i, a in enumerate(gt["annotations"]):
        x, y, w, h = a["bbox"]
        shift = jitter * (i % 3)
        preds.append({"image_id": a["image_id"], "category_id": a["category_id"],
                      "bbox": [x + shift, y, w, h], "score": 0.9 - 0.01 * (i % 7)})
    return preds


def _standalone_run(project):
    import lensvault

    with lensvault.start_run(dataset="shapes@1.0.0", config="C-01", vault=project.vault) as run:
        lensvault.log_metrics({"loss": 0.3}, step=1)
    return run


def test_eval_matches_pycocotools_and_is_recorded(project, tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from lensvault.runs.datadir import coco_ground_truth

    run = _standalone_run(project)
    gt = coco_ground_truth(project.vault.dataset("shapes@1.0.0"), "train")
    gt.pop("splits")
    preds = _predictions_from_gt(gt, jitter=2.0)
    pf = tmp_path / "preds.json"
    pf.write_text(json.dumps(preds))
    res = project.vault.evaluate(dataset="shapes@1.0.0", predictions=pf, split="train", run=run.run_id)

    coco_gt = COCO()
    coco_gt.dataset = json.loads(json.dumps(gt))
    coco_gt.createIndex()
    ev = COCOeval(coco_gt, coco_gt.loadRes(json.loads(json.dumps(preds))), "bbox")
    ev.evaluate(), ev.accumulate(), ev.summarize()
    assert res["overall"]["AP"] == pytest.approx(ev.stats[0], abs=1e-12)
    assert res["overall"]["AP50"] == pytest.approx(ev.stats[1], abs=1e-12)
    assert 0 < res["overall"]["AP"] < 1
    assert set(res["per_class"]) <= {"circle", "square", "triangle"}
    assert {"time_of_day=day", "time_of_day=night"} & set(res["per_slice"])
    shown = project.vault.get_run(run.run_id)
    assert [e["eval_id"] for e in shown["evaluations"]] == [res["eval_id"]]
    assert shown["evaluations"][0]["overall"]["AP"] == res["overall"]["AP"]


def test_predictions_by_file_name_and_class_name(project, tmp_path):
    from lensvault.runs.datadir import coco_ground_truth

    run = _standalone_run(project)
    gt = coco_ground_truth(project.vault.dataset("shapes@1.0.0"), "train")
    names = {im["id"]: im["file_name"] for im in gt["images"]}
    cats = {c["id"]: c["name"] for c in gt["categories"]}
    preds = [{"file_name": names[p["image_id"]].rsplit("/", 1)[-1], "category_name": cats[p["category_id"]],
              "bbox": p["bbox"], "score": p["score"]} for p in _predictions_from_gt(gt)]
    pf = tmp_path / "p.json"
    pf.write_text(json.dumps(preds))
    res = project.vault.evaluate(dataset="shapes@1.0.0", predictions=pf, split="train", run=run.run_id)
    assert res["overall"]["AP50"] == pytest.approx(1.0)


@pytest.mark.parametrize("bad, message", [
    ({"image_id": 9999}, "images the dataset does not have"),
    ({"file_name": "images/nope.png"}, "images the dataset does not have"),
    ({"category_id": 77}, "unknown classes"),
    ({"category_name": "cart"}, "unknown classes"),
])
def test_unknown_images_or_classes_are_clear_errors(project, tmp_path, bad, message):
    from lensvault.runs.datadir import coco_ground_truth

    run = _standalone_run(project)
    gt = coco_ground_truth(project.vault.dataset("shapes@1.0.0"), "test")
    p = {"image_id": gt["images"][0]["id"], "category_id": 1, "bbox": [1, 1, 5, 5], "score": 0.5}
    if "file_name" in bad or "category_name" in bad:
        p.pop("image_id" if "file_name" in bad else "category_id")
    p.update(bad)
    pf = tmp_path / "p.json"
    pf.write_text(json.dumps([p]))
    with pytest.raises(InputError, match=message):
        project.vault.evaluate(dataset="shapes@1.0.0", predictions=pf, split="test", run=run.run_id)


def test_eval_cli_unknown_class_exit_code(sqlite_project, tmp_path):
    run = _standalone_run(sqlite_project)
    pf = tmp_path / "p.json"
    pf.write_text(json.dumps([{"image_id": 1, "category_id": 42, "bbox": [0, 0, 1, 1], "score": 1}]))
    r = sqlite_project.lensvault("eval", "--run", run.run_id, "--dataset", "shapes@1.0.0", "--split", "all",
                                 "--predictions", str(pf))
    assert r.returncode == 6 and "unknown classes" in r.stderr


def test_start_run_standalone_records_and_refuses(project):
    import lensvault

    run = _standalone_run(project)
    s = project.vault.get_run(run.run_id)
    assert s["status"] == "succeeded" and s["kind"] == "standalone" and s["metrics"] == {"loss": 0.3}
    with pytest.raises(RuntimeError, match="boom"), \
            lensvault.start_run(dataset="shapes@1.0.0", config="C-01", vault=project.vault) as failing:
        lensvault.log_metrics({"loss": 0.9}, step=0)
        raise RuntimeError("boom")
    f = project.vault.get_run(failing.run_id)
    assert f["status"] == "failed" and f["metrics"] == {"loss": 0.9}
    (project.root / "dirty.txt").write_text("x")
    with pytest.raises(PreflightFailed) as e:
        lensvault.start_run(dataset="shapes@1.0.0", config="C-01", vault=project.vault)
    assert [x["check"] for x in e.value.failures] == ["clean"]


def test_finished_runs_are_frozen(project):
    import sqlalchemy as sa

    from lensvault.catalog.runs_schema import runs

    run = _standalone_run(project)
    with pytest.raises(Exception, match="rows are frozen"), project.vault.catalog.begin() as conn:  # (each database's error)
        conn.execute(runs.update().where(runs.c.run_id == run.run_id).values(status="running"))
    with project.vault.catalog.read() as conn:
        assert conn.execute(sa.select(runs.c.status).where(runs.c.run_id == run.run_id)).scalar() == "succeeded"


def test_tracking_without_a_run_warns_and_records_nothing(tmp_path):
    code = ("import warnings, lensvault\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always')\n"
            "    lensvault.log_metrics({'a': 1.0}, step=0)\n"
            "print(len(w), 'no active run' in str(w[0].message))\n")
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("LENSVAULT_")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.stdout.split() == ["1", "True"], out.stderr


def test_public_api_and_light_import():
    import lensvault

    assert lensvault.__all__ == sorted(lensvault.__all__)
    for name in ("log_artifact", "log_metrics", "log_params", "start_run"):
        assert name in lensvault.__all__ and callable(getattr(lensvault, name))
    out = subprocess.run([sys.executable, "-c", ("import sys, lensvault; lensvault.log_metrics; "
                          "print('sqlalchemy' in sys.modules)")], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr
