"""Every metric says where it comes from: an evaluation (eval id, dataset@version, split) or what
the run logged — in `eval`, `evals`, `model show`, release notes and `why`, human output and JSON."""

from __future__ import annotations

import json
import os

import pytest

from ._helpers import insert_run, lv, lv_json, metrics, snapshot, write


def _predictions(vault, ref: str, path, *, keep_every: int = 1):
    """Predictions from the version's own ground truth (every ``keep_every``-th box), by image id."""
    from lensvault.runs.datadir import coco_ground_truth

    gt = coco_ground_truth(vault.dataset(ref))
    preds = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
             for n, a in enumerate(gt["annotations"]) if n % keep_every == 0]
    return write(path, json.dumps(preds))


@pytest.fixture
def two_models(rvault, tmp_path):
    """detector@1.0.0 from run-1 (retail@1.0.0, evaluated on it) and detector@1.1.0 from run-2
    (retail@1.1.0, evaluated on it); both scripts also logged their own AP50, overall and per class."""
    root = rvault.root
    weights = {}
    for run, data, ap in (("run-1", "retail@1.0.0", 0.61), ("run-2", "retail@1.1.0", 0.66)):
        weights[run] = write(tmp_path / run / "model.pt", os.urandom(3000))
        insert_run(rvault, run, dataset=data, config_id="C-01", artifacts={"model.pt": weights[run]},
                   metrics=metrics(ap, {"person": ap - 0.1}))
        preds = _predictions(rvault, data, tmp_path / run / "preds.json", keep_every=1 if run == "run-2" else 2)
        assert lv("eval", "--run", run, "--dataset", data, "--split", "all", "--predictions", preds,
                  cwd=root).returncode == 0
        r = lv("model", "register", "detector", "--run", run, "--weights", weights[run], "--bump", "auto", cwd=root)
        assert r.returncode == 0, r.stderr
    return tmp_path


def test_model_show_keeps_each_source_apart(rvault, two_models):
    show = lv_json("model", "show", "detector@1.1.0", cwd=rvault.root)
    by_kind = {g["source"]["kind"]: g for g in show["metrics"]}
    assert set(by_kind) == {"evaluation", "run"}
    ev, logged = by_kind["evaluation"], by_kind["run"]
    assert (ev["source"]["dataset"], ev["source"]["split"], ev["source"]["run_id"]) == ("retail@1.1.0", None, "run-2")
    assert ev["source"]["label"] == f"eval {ev['source']['eval_id']} on retail@1.1.0 split all"
    assert ev["overall"]["AP"] == pytest.approx(1.0)
    # The script's own numbers stay under its name, never mixed into the evaluation's.
    assert logged["source"]["label"] == "logged by the run run-2 (trained on retail@1.1.0)"
    assert logged["overall"] == {"AP50": 0.66} and logged["per_class"] == {"person": {"AP50": pytest.approx(0.56)}}
    assert ev["per_class"]["person"]["AP50"] == pytest.approx(1.0)
    deltas = {d["source"]["kind"]: d for d in show["changes"]["metric_deltas"]}
    assert deltas["evaluation"]["compared_with"]["dataset"] == "retail@1.0.0" and deltas["evaluation"]["same_data"] is False
    assert deltas["run"]["compared_with"]["run_id"] == "run-1"

    text = lv("model", "show", "detector@1.1.0", cwd=rvault.root).stdout
    assert f"### Eval {ev['source']['eval_id']} on retail@1.1.0 split all" in text
    assert "### Logged by the run run-2 (trained on retail@1.1.0)" in text
    assert "(not the same data)" in text
    assert f"- eval {ev['source']['eval_id']} on retail@1.1.0 split all: AP=1.0000" in text


def test_release_notes_compare_like_with_like_and_show_later_evaluations(rvault, two_models):
    """An evaluation of 1.1.0 recorded after its registration, on the data the next version is
    evaluated on, is what 1.1.1's notes compare with; model show lists it for 1.1.0."""
    root, tmp = rvault.root, two_models
    preds = _predictions(rvault, "retail@1.0.0", tmp / "m2-on-1.0.0.json", keep_every=2)
    late = lv_json("eval", "--model", "detector@1.1.0", "--dataset", "retail@1.0.0", "--split", "all",
                   "--predictions", preds, cwd=root)
    assert late["source"]["model"] == "detector@1.1.0"
    before = lv_json("model", "show", "detector@1.1.0", cwd=root)
    assert late["eval_id"] in [e["source"]["eval_id"] for e in before["evaluations"]]
    assert late["eval_id"] not in [g["source"]["eval_id"] for g in before["metrics"]]  # the bundle is frozen
    assert late["eval_id"] not in [e["source"]["eval_id"]
                                   for e in lv_json("model", "show", "detector@1.0.0", cwd=root)["evaluations"]]

    w = write(tmp / "run-3" / "model.pt", os.urandom(3000))
    insert_run(rvault, "run-3", dataset="retail@1.1.0", config_id="C-01", artifacts={"model.pt": w})
    assert lv("eval", "--run", "run-3", "--dataset", "retail@1.0.0", "--split", "all", "--predictions",
              _predictions(rvault, "retail@1.0.0", tmp / "p3.json"), cwd=root).returncode == 0
    m = lv_json("model", "register", "detector", "--run", "run-3", "--weights", w, "--bump", "auto", cwd=root)
    assert m["version"] == "1.1.1"
    [delta] = m["changes"]["metric_deltas"]
    assert delta["source"]["run_id"] == "run-3" and delta["compared_with"]["eval_id"] == late["eval_id"]
    assert delta["same_data"] is True
    assert delta["overall"]["AP"]["delta"] > 0  # perfect predictions against half of the boxes
    assert f"Δ against 1.1.0: eval {late['eval_id']} on retail@1.0.0 split all." in m["release_notes"]


def test_why_refuses_metrics_from_different_data_unless_asked(rvault, two_models):
    root = rvault.root
    r = lv("why", "detector@1.0.0", "detector@1.1.0", cwd=root)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "no metrics on the same data" in r.stderr and "retail@1.0.0 split all" in r.stderr
    assert "lensvault eval --model detector@1.0.0 --dataset retail@1.1.0 --split all" in r.stderr
    assert "--allow-different-data" in r.stderr and "Traceback" not in r.stderr

    d = lv_json("why", "detector@1.0.0", "detector@1.1.0", "--allow-different-data", cwd=root)
    m = d["metrics"]
    assert m["same_data"] is False and m["source"] == "different data (--allow-different-data)"
    assert (m["a_source"]["dataset"], m["b_source"]["dataset"]) == ("retail@1.0.0", "retail@1.1.0")
    assert any("different data" in n for n in d["notes"])
    text = lv("why", "detector@1.0.0", "detector@1.1.0", "--allow-different-data", cwd=root).stdout
    assert "metrics of detector@1.0.0: eval " + m["a_source"]["eval_id"] in text
    assert "metrics of detector@1.1.0: eval " + m["b_source"]["eval_id"] in text

    # Evaluate A on B's data: now `why` compares exactly those two evaluations, and names them.
    preds = _predictions(rvault, "retail@1.1.0", two_models / "a-on-b.json", keep_every=2)
    same = lv_json("eval", "--model", "detector@1.0.0", "--dataset", "retail@1.1.0", "--split", "all",
                   "--predictions", preds, cwd=root)
    d = lv_json("why", "detector@1.0.0", "detector@1.1.0", cwd=root)
    m = d["metrics"]
    assert m["same_data"] is True and m["source"] == "evaluations on retail@1.1.0 split all"
    assert m["a_source"]["eval_id"] == same["eval_id"]
    assert (m["b_source"]["dataset"], m["b_source"]["run_id"]) == ("retail@1.1.0", "run-2")
    assert m["overall"]["AP"]["b"] == pytest.approx(1.0) and m["overall"]["AP"]["a"] < 1.0


def test_why_prefers_common_data_over_the_latest_evaluation(rvault, two_models):
    """B's latest evaluation is on data A never saw: the pair on common data wins."""
    root = rvault.root
    snapshot(rvault, two_models / "data", "1.2.0", 12)
    preds = _predictions(rvault, "retail@1.1.0", two_models / "a-on-b.json")
    a_on_b = lv_json("eval", "--model", "detector@1.0.0", "--dataset", "retail@1.1.0", "--split", "all",
                     "--predictions", preds, cwd=root)
    lv_json("eval", "--model", "detector@1.1.0", "--dataset", "retail@1.2.0", "--split", "all",
            "--predictions", _predictions(rvault, "retail@1.2.0", two_models / "b-on-new.json"), cwd=root)
    m = lv_json("why", "detector@1.0.0", "detector@1.1.0", cwd=root)["metrics"]
    assert m["same_data"] is True and m["a_source"]["eval_id"] == a_on_b["eval_id"]
    assert (m["b_source"]["dataset"], m["b_source"]["run_id"]) == ("retail@1.1.0", "run-2")


def test_ad_hoc_evaluation_is_recorded_with_its_source(rvault, tmp_path):
    root = rvault.root
    preds = _predictions(rvault, "retail@1.0.0", tmp_path / "preds.json")
    res = lv_json("eval", "--dataset", "retail@1.0.0", "--split", "all", "--predictions", preds, cwd=root)
    assert res["ad_hoc"] is True and res["run_id"] is None and res["model"] is None
    assert res["source"] == {"kind": "evaluation", "label": f"eval {res['eval_id']} on retail@1.0.0 split all",
                             "eval_id": res["eval_id"], "dataset": "retail@1.0.0", "split": None, "run_id": None,
                             "model": None}
    text = lv("eval", "--dataset", "retail@1.0.0", "--split", "all", "--predictions", preds, cwd=root).stdout
    assert "(ad hoc, not attached to a run)" in text

    listed = lv_json("evals", "--ad-hoc", cwd=root)
    assert len(listed) == 2 and listed[0]["eval_id"] == res["eval_id"] and listed[0]["source"] == res["source"]
    assert [e["eval_id"] for e in lv_json("evals", "--dataset", "retail@1.0.0", cwd=root)] == [x["eval_id"] for x in listed]
    assert lv_json("evals", "--dataset", "retail@1.1.0", cwd=root) == []
    assert res["eval_id"] in lv("evals", cwd=root).stdout
    events = [e for e in lv_json("events", "--subject", res["eval_id"], cwd=root) if e["action"] == "evaluation.add"]
    assert len(events) == 1 and events[0]["after"]["ad_hoc"] is True
    graph = lv_json("lineage", "retail@1.0.0", "--down", cwd=root)
    assert any(res["eval_id"] in json.dumps(n) for n in graph["nodes"])

    # Write-once, as every evaluation.
    import sqlalchemy as sa

    from lensvault.catalog.runs_schema import evaluations

    with pytest.raises(sa.exc.DBAPIError) as ei, rvault.catalog.begin() as conn:
        conn.execute(sa.update(evaluations).where(evaluations.c.eval_id == res["eval_id"]).values(split="test"))
    assert "write-once" in str(ei.value.orig)
    r = lv("eval", "--run", "x", "--model", "detector@1.0.0", "--dataset", "retail@1.0.0", "--predictions", preds,
           cwd=root)
    assert r.returncode == 2 and "not to both" in r.stderr


def test_a_bundle_without_recorded_sources_says_so(rvault, tmp_path, monkeypatch):
    """Models registered before sources were recorded hold one merged dict: shown as such."""
    import lensvault.runs.metric_sources as ms

    w = write(tmp_path / "model.pt", os.urandom(3000))
    insert_run(rvault, "run-old", dataset="retail@1.0.0", config_id="C-01", artifacts={"model.pt": w},
               metrics=metrics(0.5))
    merged = {"overall": {"AP50": 0.5, "AP": 0.4}, "per_class": {"person": {"AP50": 0.3}}, "per_slice": {}}
    monkeypatch.setattr(ms, "run_groups", lambda conn, run_id: merged)
    m = rvault.register_model("old", run="run-old", weights=[w], bump="auto")
    monkeypatch.undo()
    assert m.bundle["metrics"] == merged
    show = lv_json("model", "show", "old@1.0.0", cwd=rvault.root)
    assert [g["source"]["kind"] for g in show["metrics"]] == ["unrecorded"]
    assert show["metrics"][0]["overall"] == merged["overall"]
    text = lv("model", "show", "old@1.0.0", cwd=rvault.root).stdout
    assert "recorded before LensVault recorded metric sources" in text
    assert "## Evaluations\n\n- none recorded" in text
