"""``lensvault why A B``: code, data, config, environment and metrics, likeliest cause first."""

from __future__ import annotations

import json

import pytest

from .conftest import TRAIN_V2

# -- the story: config-only, data-only, a production regression --------------------------------


def test_config_only_change_ranks_config_first(story):
    rep = story.vault.why("detector@1.1.0", "detector@1.2.0")
    assert rep.same_name and not rep.notes
    top = rep.explanations[0]
    assert top["factor"] == "config" and top["score"] == 1.0
    assert len(rep.explanations) == 1
    assert "the only thing that changed" in top["reasons"][0]
    assert any("preprocess.brightness_threshold" in r for r in top["reasons"])
    assert rep.config["changed_keys"] == {"preprocess.brightness_threshold": {"a": 0.3, "b": 0.12}}
    assert not rep.data["changed"] and not rep.code["changed"] and not rep.environment["changed"]
    assert rep.config["a"] == "C-01" and rep.config["b"] == "C-02"


def test_data_only_change_ranks_data_first_with_the_annotation_diff(story):
    rep = story.vault.why("detector@1.0.0", "detector@1.1.0")
    top = rep.explanations[0]
    assert top["factor"] == "data" and top["score"] == 1.0, rep.explanations
    assert "relabeled" in rep.data["summary"] and rep.data["summary"] in top["reasons"]
    assert rep.data["a"] == "demo@1.0.0" and rep.data["b"] == "demo@1.0.1"
    assert rep.data["suggested_bump"] == "patch"
    counts = rep.data["annotations"]["counts"]
    assert counts["relabeled"] > 0 and counts["moved"] == counts["added"] == counts["removed"] == 0
    # Examples, not a dump of every changed box.
    assert 0 < len(rep.data["annotations"]["examples"]["relabeled"]) <= 10
    # The commit moved only because the new manifest was committed: that is the data change.
    assert rep.code["changed"] and not rep.code["code_changed"]
    assert [f["path"] for f in rep.code["files"]] == ["data/manifests/demo/1.0.1.json"]
    assert "manifests" in rep.code["note"]
    assert [e["factor"] for e in rep.explanations] == ["data"]
    assert not rep.config["changed"]
    # Compared like with like: both on the corrected test labels.
    assert rep.metrics["source"] == "evaluations on demo@1.0.1 split test"
    assert rep.rollback_command is None and rep.protected_alias is None


def test_production_regression_offers_the_rollback(story):
    r = story.lv("why", "detector@1.1.0", "detector@production")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "why detector@1.1.0 → detector@1.2.0" in out
    assert "1. config (score 1.00)" in out
    assert "preprocess.brightness_threshold: 0.3 → 0.12" in out
    assert "time_of_day=night" in out
    assert "holds 'production' and regressed" in out
    assert "lensvault model rollback detector production" in out
    rep = story.vault.why("detector@1.1.0", "detector@production")
    assert rep.regressed and rep.protected_alias == "production"
    assert rep.rollback_command == "lensvault model rollback detector production"
    assert rep.metrics["per_slice"]["time_of_day=night"]["AP50"]["delta"] < 0
    assert any("slice time_of_day=night" in x for x in rep.explanations[0]["reasons"])


def test_no_rollback_when_b_is_not_in_production(story):
    r = story.lv("why", "detector@1.2.0", "detector@1.1.0")
    assert r.returncode == 0, r.stderr
    assert "rollback" not in r.stdout
    rep = story.vault.why("detector@1.2.0", "detector@1.1.0")
    assert rep.protected_alias is None and rep.rollback_command is None and not rep.regressed


def test_environment_recorded_and_same(story):
    rep = story.vault.why("detector@1.1.0", "detector@1.2.0")
    assert rep.a["environment_oid"] and rep.a["environment_oid"] == rep.b["environment_oid"]
    assert rep.environment == {"changed": False}
    env = json.loads(story.vault.store.read_bytes(rep.a["environment_oid"]))
    assert env["python"]["version"] and "numpy" in env["packages"]


def test_why_json_keys(story):
    d = story.lv_json("why", "detector@1.0.0", "detector@production")
    assert set(d) == {"a", "b", "same_name", "code", "data", "config", "environment", "metrics", "explanations",
                      "regressed", "protected_alias", "rollback_command", "notes"}
    for side in ("a", "b"):
        assert {"ref", "model", "version", "run_id", "code_commit", "clean", "dataset", "config_id",
                "environment_oid", "aliases"} <= set(d[side])
    assert d["b"]["ref"] == "detector@1.2.0" and d["b"]["aliases"] == ["production"]
    assert set(d["metrics"]) == {"source", "same_data", "a_source", "b_source", "overall", "per_class", "per_slice"}
    assert d["metrics"]["same_data"] is True
    for side in ("a_source", "b_source"):
        src = d["metrics"][side]
        assert src["kind"] == "evaluation" and src["eval_id"].startswith("eval-")
        assert (src["dataset"], src["split"]) == ("demo@1.0.1", "test") and src["label"].startswith("eval eval-")
    assert {"a", "b", "delta"} == set(d["metrics"]["overall"]["AP50"])
    for e in d["explanations"]:
        assert set(e) == {"factor", "score", "reasons"} and 0 <= e["score"] <= 1 and e["reasons"]
    scores = [e["score"] for e in d["explanations"]]
    assert scores == sorted(scores, reverse=True)
    # Data and config both changed: neither is "the only thing".
    assert {e["factor"] for e in d["explanations"]} == {"config", "data"}
    assert all(e["score"] < 1.0 for e in d["explanations"])


def test_why_between_run_ids(story):
    rep = story.vault.why(story.ids["run2"], story.ids["run3"])
    assert rep.a["model"] is None and rep.b["ref"] == story.ids["run3"]
    assert rep.explanations[0]["factor"] == "config"
    assert rep.rollback_command is None  # a run holds no alias


def test_same_model_twice_says_nothing_changed(story):
    rep = story.vault.why("detector@1.2.0", "detector@production")
    assert [e["factor"] for e in rep.explanations] == ["none"]
    assert rep.rollback_command is None  # no regression against itself


def test_unknown_refs(story):
    r = story.lv("why", "detector@1.0.0", "detector@9.0.0")
    assert r.returncode == 3 and "fix:" in r.stderr and "Traceback" not in r.stderr


# -- the lab: code and environment changes, two model names, an improving production ----------------


@pytest.fixture(scope="module")
def lab_models(lab, monkeypatch_module):
    """labnet@1.0.0 (train.py v1) → labnet@1.1.0 (v2, a real commit; production) and segnet@1.0.0
    (v2 again, in an environment with one package upgraded and one added)."""
    from lensvault import environment

    cmd = ["python", "train.py"]
    a = lab.run(cmd, dataset="lab@1.0.0", config="C-L1")
    (lab.root / "train.py").write_text(TRAIN_V2)
    v2 = lab.commit_all("Better feature extractor")
    b = lab.run(cmd, dataset="lab@1.0.0", config="C-L1")
    real = environment.capture_environment

    def upgraded(**kw):
        env = real(**kw)
        env["packages"] = {**env["packages"], "numpy": "9.9.9", "torch": "2.3.0"}
        return env

    with monkeypatch_module.context() as mp:
        mp.setattr(environment, "capture_environment", upgraded)
        c = lab.run(cmd, dataset="lab@1.0.0", config="C-L1")
    v = lab.vault
    for run, name, ver in ((a, "labnet", "1.0.0"), (b, "labnet", "1.1.0"), (c, "segnet", "1.0.0")):
        v.register_model(name, run=run, weights=lab.root / "runs" / run / "weights.bin", version=ver)
    v.promote("labnet@1.1.0", "production", reason="better", new=True)
    return {"a": a, "b": b, "c": c, "v2": v2}


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_code_change_shows_commits_and_files(lab, lab_models):
    rep = lab.vault.why("labnet@1.0.0", "labnet@1.1.0")
    top = rep.explanations[0]
    assert top["factor"] == "code" and top["score"] == 1.0, rep.explanations
    assert [c["subject"] for c in rep.code["commits"]] == ["Better feature extractor"]
    assert rep.code["commits"][0]["sha"] == lab_models["v2"]
    assert [(f["path"], f["status"]) for f in rep.code["files"]] == [("train.py", "modified")]
    assert rep.code["code_changed"] and "train.py" in top["reasons"][1]
    assert rep.metrics["source"] == "metrics logged by the runs (both trained on lab@1.0.0)"
    assert rep.metrics["overall"]["AP50"]["delta"] == pytest.approx(0.05)
    # B holds production but improved: no rollback offered.
    assert rep.protected_alias == "production" and not rep.regressed and rep.rollback_command is None
    out = lab.lv("why", "labnet@1.0.0", "labnet@production").stdout
    assert "Better feature extractor" in out and "modified  train.py (+2 -1)" in out
    assert "rollback" not in out


def test_environment_change(lab, lab_models):
    rep = lab.vault.why(lab_models["b"], lab_models["c"])
    assert rep.environment["changed"]
    pk = rep.environment["packages"]
    assert pk["added"] == {"torch": "2.3.0"} and pk["changed"]["numpy"][1] == "9.9.9"
    assert [e["factor"] for e in rep.explanations] == ["environment"]
    assert rep.explanations[0]["score"] == 1.0 and "numpy" in rep.explanations[0]["reasons"][1]
    out = lab.lv("why", lab_models["b"], lab_models["c"]).stdout
    assert "environment: changed" in out and "numpy:" in out and "+ torch 2.3.0" in out


def test_two_model_names_are_allowed_and_noted(lab, lab_models):
    rep = lab.vault.why("labnet@1.1.0", "segnet@1.0.0")
    assert not rep.same_name
    assert len(rep.notes) == 1 and "two different models (labnet and segnet)" in rep.notes[0]
    assert "allowed" in rep.notes[0]
    r = lab.lv("why", "labnet@1.1.0", "segnet@1.0.0")
    assert r.returncode == 0, r.stderr
    assert "note:" in r.stdout and "two different models" in r.stdout
    d = lab.lv_json("why", "labnet@1.1.0", "segnet@1.0.0")
    assert d["same_name"] is False and d["notes"] == rep.notes
