"""How ``why`` ranks the factors, one explanation at a time, on reports built by hand: what
raises a factor's score and which reasons it prints (the end-to-end story is in test_why.py)."""

from __future__ import annotations

import pytest

from lensvault.lineage.why import WhyReport, _rank


def report(**kw) -> WhyReport:
    """Nothing changed, no metrics; each test changes what it is about."""
    base = {"code": {"changed": False, "code_changed": False, "dirty": [], "commits": [], "files": []},
            "data": {"a": "d@1.0.0", "b": "d@1.0.0", "changed": False},
            "config": {"changed": False, "added": {}, "removed": {}, "changed_keys": {}},
            "environment": {"changed": False},
            "metrics": {"overall": {}, "per_class": {}, "per_slice": {}}}
    base.update(kw)
    return WhyReport(a={}, b={}, same_name=True, **base)


def config(changed_keys=None, added=None, removed=None) -> dict:
    return {"changed": True, "changed_keys": changed_keys or {}, "added": added or {}, "removed": removed or {}}


def ap50(a: float, b: float) -> dict:
    return {"AP50": {"a": a, "b": b, "delta": b - a}}


def by_factor(rep: WhyReport) -> dict[str, dict]:
    return {e["factor"]: e for e in _rank(rep)}


CODE = {"changed": True, "code_changed": True, "dirty": [], "commits": [{"sha": "1"}],
        "files": [{"path": "train.py"}, {"path": "README.md"}]}
DATA = {"a": "d@1.0.0", "b": "d@1.0.1", "changed": True, "summary": "3 boxes relabeled", "suggested_bump": "patch",
        "annotations": {"counts": {"relabeled": 3}}, "per_class": {"car": {}, "person": {}}}


def test_nothing_changed_is_the_factor_none():
    assert _rank(report()) == [{"factor": "none", "score": 0.0, "reasons": [
        "code, data, config and environment are identical: differences are noise or non-determinism"]}]


def test_the_only_factor_that_changed_scores_one():
    for kw in ({"config": config({"lr": {"a": 1, "b": 2}})}, {"data": DATA}, {"code": CODE},
               {"environment": {"changed": True, "packages": {"changed": {"numpy": ["1", "2"]}}}}):
        (top,) = _rank(report(**kw))
        assert top["score"] == 1.0 and top["reasons"][0] == "the only thing that changed", kw


def test_config_counts_hyperparameters_not_names_notes_or_logging():
    keys = {k: {"a": 1, "b": 2} for k in ("train.lr", "notes", "run_name", "log_every", "output", "model.depth")}
    top = by_factor(report(config=config(keys), code=CODE))["config"]
    assert top["reasons"] == ["2 hyperparameter(s) changed: train.lr 1→2, model.depth 1→2"]
    assert top["score"] == 0.65
    many = {f"k{i}": i for i in range(8)}
    top = by_factor(report(config=config(added={"new": 3}, removed=many), code=CODE))["config"]
    assert top["score"] == 0.75  # capped: ten keys weigh no more than three
    assert top["reasons"][0].startswith("9 hyperparameter(s) changed: new None→3, k0 0→None")
    assert top["reasons"][0].endswith("… and 3 more")


def test_config_keys_acting_on_the_slice_that_dropped_most_score_higher():
    keys = {"preprocess.brightness_threshold": {"a": 0.3, "b": 0.12}, "train.lr": {"a": 1, "b": 2}}
    dropped = {"overall": ap50(0.80, 0.78), "per_class": {},
               "per_slice": {"time_of_day=night": ap50(0.70, 0.55), "time_of_day=day": ap50(0.85, 0.85)}}
    top = by_factor(report(config=config(keys), code=CODE, metrics=dropped))["config"]
    assert top["score"] == 0.95  # 0.45, 0.1 per hyperparameter, 0.3 for the slice
    assert top["reasons"][1] == ("the drop concentrates on slice time_of_day=night (-0.150) and "
                                 "preprocess.brightness_threshold plausibly acts on it")
    # A key named after the slice counts too; a key about nothing related does not.
    named = by_factor(report(config=config({"aug.night_mix": {"a": 0, "b": 1}}), code=CODE, metrics=dropped))
    assert "aug.night_mix plausibly acts on it" in named["config"]["reasons"][1]
    unrelated = by_factor(report(config=config({"train.lr": {"a": 1, "b": 2}}), code=CODE, metrics=dropped))
    assert unrelated["config"]["reasons"] == ["1 hyperparameter(s) changed: train.lr 1→2"]
    # A drop spread evenly over the slices does not single one out.
    even = {**dropped, "per_slice": {"time_of_day=night": ap50(0.70, 0.69), "time_of_day=day": ap50(0.85, 0.84)}}
    assert len(by_factor(report(config=config(keys), code=CODE, metrics=even))["config"]["reasons"]) == 1


def test_data_scores_higher_for_a_minor_or_major_diff_and_for_classes_whose_ap_moved():
    patch = by_factor(report(data=DATA, code=CODE))["data"]
    assert patch == {"factor": "data", "score": 0.45, "reasons": ["3 boxes relabeled"]}
    minor = by_factor(report(data={**DATA, "suggested_bump": "minor"}, code=CODE))["data"]
    assert minor["score"] == 0.6
    moved = {"overall": ap50(0.8, 0.8), "per_slice": {},
             "per_class": {"car": ap50(0.7, 0.6), "person": ap50(0.7, 0.71), "bus": ap50(0.5, 0.3)}}
    top = by_factor(report(data=DATA, code=CODE, metrics=moved))["data"]
    assert top["score"] == 0.65
    assert top["reasons"] == ["3 boxes relabeled", "AP moved for classes whose labels changed: car"]
    # No box changed (only images added, say): AP moving is no evidence against the labels.
    no_boxes = {**DATA, "annotations": {"counts": {"relabeled": 0}}}
    assert len(by_factor(report(data=no_boxes, code=CODE, metrics=moved))["data"]["reasons"]) == 1
    # A non-vision dataset diff has no summary of boxes: the reason names the two versions.
    files_only = {"a": "d@1.0.0", "b": "d@2.0.0", "changed": True}
    assert by_factor(report(data=files_only, code=CODE))["data"]["reasons"] == ["dataset d@1.0.0 → d@2.0.0"]


def test_code_lists_python_files_and_scores_uncommitted_code_higher():
    top = by_factor(report(code=CODE, data=DATA))["code"]
    assert top == {"factor": "code", "score": 0.35, "reasons": ["1 commit(s), 2 file(s) changed (train.py)"]}
    dirty = {"changed": False, "code_changed": False, "dirty": ["detector@1.1.0"], "commits": [], "files": []}
    top = by_factor(report(code=dirty, data=DATA))["code"]
    assert top["score"] == 0.4
    assert top["reasons"][1] == "uncommitted code in detector@1.1.0: what ran is not fully known"
    manifests_only = {**CODE, "code_changed": False}
    assert "code" not in by_factor(report(code=manifests_only, data=DATA))


def test_environment_scores_low_and_names_the_changed_packages():
    env = {"changed": True, "packages": {"changed": {"numpy": ["1", "2"], "torch": ["2.0", "2.1"]},
                                         "added": {"x": "1"}, "removed": {}}}
    top = by_factor(report(environment=env, code=CODE))["environment"]
    assert top == {"factor": "environment", "score": pytest.approx(0.24),
                   "reasons": ["3 package(s) differ: numpy, torch"]}


def test_ties_keep_config_data_code_environment_order_and_scores_are_rounded():
    keys = {f"k{i}": {"a": 0, "b": 1} for i in range(3)}
    data = {**DATA, "suggested_bump": "major"}
    code = {**CODE, "files": [{"path": f"m{i}.py"} for i in range(5)], "dirty": ["x"]}
    factors = [(e["factor"], e["score"]) for e in _rank(report(config=config(keys), data=data, code=code))]
    assert factors == [("config", 0.75), ("data", 0.6), ("code", 0.6)]
