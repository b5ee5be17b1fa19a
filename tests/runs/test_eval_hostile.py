"""Hostile predictions files for ``eval``: a wrong type or a non-finite number is an error
located in the file (``preds.json, [3].bbox[2]``), never a traceback, and nothing is recorded."""

from __future__ import annotations

import json

import pytest

from lensvault.errors import InputError


def _good(gt) -> list[dict]:
    return [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.9}
            for a in gt["annotations"]]


@pytest.fixture
def setup(sqlite_project):
    import lensvault
    from lensvault.runs.datadir import coco_ground_truth

    with lensvault.start_run(dataset="shapes@1.0.0", config="C-01", vault=sqlite_project.vault) as run:
        pass
    gt = coco_ground_truth(sqlite_project.vault.dataset("shapes@1.0.0"), "train")
    return sqlite_project, run.run_id, _good(gt)


@pytest.mark.parametrize("field, value, pos", [
    ("bbox", [1, 2, float("nan"), 4], "[3].bbox[2]"),
    ("bbox", [1, 2, 3, float("inf")], "[3].bbox[3]"),
    ("bbox", [1, "2", 3, 4], "[3].bbox[1]"),
    ("bbox", [1, 2, 3], "[3].bbox"),
    ("bbox", "1 2 3 4", "[3].bbox"),
    ("score", float("nan"), "[3].score"),
    ("score", "high", "[3].score"),
    ("score", True, "[3].score"),
    ("image_id", [1], "[3].image_id"),  # was a TypeError traceback (unhashable) while resolving
    ("image_id", {"id": 1}, "[3].image_id"),
    ("category_id", [1], "[3].category_id"),
    ("category_name", ["circle"], "[3].category_name"),
    ("file_name", 5, "[3].file_name"),
])
def test_bad_prediction_fields_are_located_in_the_file(setup, tmp_path, field, value, pos):
    project, run_id, preds = setup
    preds[3][field] = value
    pf = tmp_path / "preds.json"
    pf.write_text(json.dumps(preds))
    with pytest.raises(InputError) as info:
        project.vault.evaluate(dataset="shapes@1.0.0", predictions=pf, split="train", run=run_id)
    assert info.value.where == f"{pf}, {pos}", info.value.where
    assert info.value.fix
    from lensvault.evaluations.recorded import list_evaluations

    assert list_evaluations(project.vault) == []


def test_the_annotations_wrapper_is_located_too(setup, tmp_path):
    project, run_id, preds = setup
    preds[0]["score"] = float("nan")
    pf = tmp_path / "preds.json"
    pf.write_text(json.dumps({"annotations": preds}))
    with pytest.raises(InputError) as info:
        project.vault.evaluate(dataset="shapes@1.0.0", predictions=pf, split="train", run=run_id)
    assert info.value.where == f"{pf}, annotations[0].score" and "1 prediction field" in info.value.what


def test_deep_nesting_is_an_input_error(setup, tmp_path):
    project, run_id, _ = setup
    pf = tmp_path / "preds.json"
    pf.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(InputError, match="nested too deeply"):
        project.vault.evaluate(dataset="shapes@1.0.0", predictions=pf, split="train", run=run_id)


def test_eval_cli_exit_code_and_location(setup, tmp_path):
    project, run_id, preds = setup
    preds[1]["bbox"] = [0, 0, float("nan"), 1]
    pf = tmp_path / "preds.json"
    pf.write_text(json.dumps(preds))
    r = project.lensvault("eval", "--run", run_id, "--dataset", "shapes@1.0.0", "--split", "train",
                          "--predictions", str(pf), "--json")
    assert r.returncode == 6 and "Traceback" not in r.stderr
    err = json.loads(r.stdout)
    assert err["where"] == f"{pf}, [1].bbox[2]" and "NaN" in err["what"]
    ok = tmp_path / "ok.json"
    preds[1]["bbox"] = [0, 0, 1, 1]
    ok.write_text(json.dumps(preds))
    r = project.lensvault("eval", "--run", run_id, "--dataset", "shapes@1.0.0", "--split", "train",
                          "--predictions", str(ok), "--json")
    assert r.returncode == 0, r.stderr
