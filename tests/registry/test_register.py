"""Registering runs as model versions: bundles, version rules, refusals (both backends)."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from lensvault.errors import AlreadyExists, InputError, IntegrityError, NotFound, UsageError, VersionRuleError

from ._helpers import insert_config, insert_run, metrics, sha256, write


def _run(vault, tmp_path, run_id, *, data=b"", **kw):
    w = write(tmp_path / "runs" / run_id / "out" / "model.pt", data or f"weights of {run_id}".encode())
    kw.setdefault("artifacts", {"model.pt": w})
    kw.setdefault("config_id", "C-01")
    insert_run(vault, run_id, **kw)
    return w


def _count(vault, table) -> int:
    with vault.catalog.read() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def test_two_runs_on_two_dataset_versions_become_1_0_0_and_1_1_0(rvault, tmp_path):
    w1 = _run(rvault, tmp_path, "r1", dataset="retail@1.0.0",
              metrics=metrics(0.70, {"person": 0.60, "cart": 0.80}, AP75=0.50))
    w2 = _run(rvault, tmp_path, "r2", dataset="retail@1.1.0",
              metrics=metrics(0.75, {"person": 0.70, "cart": 0.78}, AP75=0.55))
    m1 = rvault.register_model("detector", run="r1", weights=w1, bump="auto", caveats=["weak at night"])
    m2 = rvault.register_model("detector", run="r2", weights=w2, bump="auto")
    assert (m1.version, m1.bump) == ("1.0.0", None)
    assert (m2.version, m2.bump) == ("1.1.0", "minor")
    assert m2.bundle["bump_decision"]["reasons"]["minor"] == ["dataset changed: retail@1.0.0 → retail@1.1.0"]
    assert "major" not in m2.bundle["bump_decision"]["reasons"]
    # label map came from the dataset version
    assert [c["name"] for c in m2.label_map["classes"]] == ["person", "cart", "shelf"]
    # metrics: the last step wins, per class kept apart; one group, named after its source
    [logged] = m1.metrics
    assert logged["source"]["kind"] == "run" and logged["source"]["run_id"] == "r1"
    assert logged["overall"] == {"AP50": 0.70, "AP75": 0.50}
    assert logged["per_class"]["person"] == {"AP50": 0.60}
    [d] = m2.bundle["metric_deltas"]
    assert d["source"]["run_id"] == "r2" and d["compared_with"]["run_id"] == "r1"
    assert d["overall"]["AP50"]["delta"] == pytest.approx(0.05)
    assert d["per_class"]["cart"]["AP50"]["delta"] == pytest.approx(-0.02)
    notes = m2.release_notes
    assert "retail@1.1.0" in notes and "previous model: `retail@1.0.0`" in notes
    assert "| AP50 | 0.75 | +0.05 |" in notes
    assert "| cart | AP50 | 0.78 | -0.02 |" in notes
    log = m2.bundle["dataset_changelog"]
    assert [e["ref"] for e in log] == ["retail@1.1.0"]
    assert "3" in log[0]["summary"]  # the changelog names the 3 added images
    assert f"`{log[0]['summary']}`" not in notes and log[0]["summary"] in notes
    assert "weak at night" in m1.release_notes and "none recorded" in m2.release_notes
    # what `model show --json` needs
    j = m2.to_dict()
    for key in ("name", "version", "run_id", "dataset", "config", "code_commit", "metrics", "files", "release_notes"):
        assert key in j
    weights = [f for f in j["files"] if f["role"] == "weights"]
    assert weights == [{"name": "model.pt", "role": "weights", "sha256": sha256(w2), "size": len(b"weights of r2")}]


def test_release_notes_name_changed_config_keys(rvault, tmp_path):
    insert_config(rvault, "C-02", {"model": {"architecture": "yolov8n"}, "train": {"lr": 0.001, "epochs": 80, "seed": 2024}})
    w1 = _run(rvault, tmp_path, "r1")
    w2 = _run(rvault, tmp_path, "r2", config_id="C-02")
    rvault.register_model("detector", run="r1", weights=w1, version="1.0.0")
    m = rvault.register_model("detector", run="r2", weights=w2, bump="auto")
    assert m.version == "1.1.0"
    changed = m.bundle["bump_decision"]["config_changes"]["changed"]
    assert changed == {"train.epochs": {"from": 50, "to": 80}, "train.lr": {"from": 0.01, "to": 0.001}}
    assert "- `train.lr`: 0.01 → 0.001" in m.release_notes
    assert "Config: `C-02` (previous: `C-01`)" in m.release_notes


def test_architecture_change_is_major(rvault, tmp_path):
    insert_config(rvault, "C-02", {"model": {"architecture": "rtdetr"}, "train": {"lr": 0.01, "epochs": 50, "seed": 2024}})
    rvault.register_model("detector", run="r1", weights=_run(rvault, tmp_path, "r1"), version="1.0.0")
    m = rvault.register_model("detector", run="r2", weights=_run(rvault, tmp_path, "r2", config_id="C-02"), bump="auto")
    assert (m.version, m.bump) == ("2.0.0", "major")
    assert m.bundle["bump_decision"]["reasons"]["major"] == ["architecture changed: yolov8n → rtdetr"]


def test_label_map_change_is_major_even_with_a_dataset_change(rvault, tmp_path):
    rvault.register_model("detector", run="r1", weights=_run(rvault, tmp_path, "r1"), version="1.0.0")
    lm = write(tmp_path / "labels.json", json.dumps({"1": "person", "2": "cart"}))
    w2 = _run(rvault, tmp_path, "r2", dataset="retail@1.1.0")
    with pytest.raises(VersionRuleError) as e:
        rvault.register_model("detector", run="r2", weights=w2, labelmap=lm, version="1.1.0")
    assert e.value.details["required"] == "major"
    assert "label map changed: removed shelf(3)" in e.value.what
    m = rvault.register_model("detector", run="r2", weights=w2, labelmap=lm, bump="auto")
    assert m.version == "2.0.0"
    assert m.label_map == {"classes": [{"id": 1, "name": "person"}, {"id": 2, "name": "cart"}]}
    assert any(f["name"] == "labelmap.json" and f["sha256"] == sha256(lm) for f in m.files)


def test_output_schema_change_is_major_and_postprocess_change_minor(rvault, tmp_path):
    p1 = write(tmp_path / "post1.yaml", "nms_iou: 0.5\noutput_schema: {boxes: xyxy}\n")
    p2 = write(tmp_path / "post2.yaml", "nms_iou: 0.6\noutput_schema: {boxes: xyxy}\n")
    p3 = write(tmp_path / "post3.yaml", "nms_iou: 0.6\noutput_schema: {boxes: xywh}\n")
    rvault.register_model("detector", run="r1", weights=_run(rvault, tmp_path, "r1"), postprocess=p1, version="1.0.0")
    m2 = rvault.register_model("detector", run="r2", weights=_run(rvault, tmp_path, "r2"), postprocess=p2, bump="auto")
    m3 = rvault.register_model("detector", run="r3", weights=_run(rvault, tmp_path, "r3"), postprocess=p3, bump="auto")
    assert (m2.version, m3.version) == ("1.1.0", "2.0.0")
    assert m2.bundle["postprocess"] == {"nms_iou": 0.6, "output_schema": {"boxes": "xyxy"}}
    assert m3.bundle["bump_decision"]["reasons"]["major"] == ["output schema changed"]


def test_only_code_changed_is_patch(rvault, tmp_path):
    rvault.register_model("detector", run="r1", weights=_run(rvault, tmp_path, "r1"), version="1.0.0")
    m = rvault.register_model("detector", run="r2", weights=_run(rvault, tmp_path, "r2", code_commit="b" * 40),
                              bump="auto")
    assert (m.version, m.bump) == ("1.0.1", "patch")
    assert m.bundle["bump_decision"]["reasons"] == {"patch": [f"code changed: {'a' * 10} → {'b' * 10}", "weights changed"]}


def test_understated_version_refused_with_reason_unless_forced(rvault, tmp_path):
    rvault.register_model("detector", run="r1", weights=_run(rvault, tmp_path, "r1"), version="1.0.0")
    w2 = _run(rvault, tmp_path, "r2", dataset="retail@1.1.0")
    with pytest.raises(VersionRuleError) as e:
        rvault.register_model("detector", run="r2", weights=w2, version="1.0.1")
    assert "requires MINOR" in e.value.what and "dataset changed: retail@1.0.0 → retail@1.1.0" in e.value.what
    assert "1.1.0" in e.value.fix
    assert len(rvault.models("detector")) == 1
    m = rvault.register_model("detector", run="r2", weights=w2, version="1.0.1", force=True)
    assert m.forced and m.bundle["forced"] and "requires MINOR" in m.bundle["forced_reason"]
    assert "> Forced:" in m.release_notes
    ev = rvault.events(subject="detector@1.0.1")
    assert ev[-1]["after"]["forced"] is True


def test_explicit_bump_kinds_and_taken_versions(rvault, tmp_path):
    rvault.register_model("detector", run="r1", weights=_run(rvault, tmp_path, "r1"), version="1.0.0")
    m = rvault.register_model("detector", run="r2", weights=_run(rvault, tmp_path, "r2", code_commit="c" * 40),
                              bump="major")
    assert m.version == "2.0.0"  # over-stating is allowed
    with pytest.raises(AlreadyExists):
        rvault.register_model("detector", run="r3", weights=_run(rvault, tmp_path, "r3"), version="2.0.0")
    with pytest.raises(UsageError):
        rvault.register_model("detector", run="r3", weights=tmp_path / "runs/r3/out/model.pt")


@pytest.mark.parametrize("status", ["failed", "interrupted", "running"])
def test_unfinished_or_failed_run_refused(rvault, tmp_path, status):
    w = _run(rvault, tmp_path, "bad", status=status)
    with pytest.raises(InputError) as e:
        rvault.register_model("detector", run="bad", weights=w, version="1.0.0", allow_dirty=True)
    assert "bad" in e.value.what
    assert rvault.models() == []


def test_dirty_run_refused_unless_allowed_then_marked(rvault, tmp_path):
    w = _run(rvault, tmp_path, "dirty", clean=False)
    with pytest.raises(InputError) as e:
        rvault.register_model("detector", run="dirty", weights=w, version="1.0.0")
    assert "--allow-dirty" in e.value.fix
    m = rvault.register_model("detector", run="dirty", weights=w, version="1.0.0", allow_dirty=True)
    assert m.dirty and m.summary()["dirty"]
    assert "uncommitted code" in m.release_notes and "(dirty)" in m.release_notes


def test_weights_changed_after_the_run_recorded_them_refused(rvault, tmp_path):
    w = _run(rvault, tmp_path, "r1")
    events_before = len(rvault.events())
    w.write_bytes(b"retrained by hand afterwards")
    with pytest.raises(IntegrityError) as e:
        rvault.register_model("detector", run="r1", weights=w, version="1.0.0")
    assert "changed after run r1 recorded them" in e.value.what
    from lensvault.catalog.registry_schema import model_files, model_versions

    assert _count(rvault, model_versions) == 0 and _count(rvault, model_files) == 0
    assert len(rvault.events()) == events_before


def test_weights_the_run_did_not_record_are_accepted_but_flagged(rvault, tmp_path):
    w = _run(rvault, tmp_path, "r1", artifacts={})
    m = rvault.register_model("detector", run="r1", weights=w, version="1.0.0")
    assert m.bundle["weights_unverified"] == ["model.pt"]
    assert "weights not recorded by the run" in m.release_notes


def test_weights_without_label_map_refused(rvault, tmp_path):
    w = _run(rvault, tmp_path, "nodata", dataset=None)
    with pytest.raises(InputError) as e:
        rvault.register_model("detector", run="nodata", weights=w, version="1.0.0")
    assert e.value.what == "weights without a label map are refused"
    # a dataset version without annotations has no class map either
    (tmp_path / "plain").mkdir()
    write(tmp_path / "plain" / "a.bin", b"x")
    rvault.snapshot("plain", tmp_path / "plain", version="1.0.0")
    w2 = _run(rvault, tmp_path, "plain", dataset="plain@1.0.0")
    with pytest.raises(InputError):
        rvault.register_model("detector", run="plain", weights=w2, version="1.0.0")
    lm = write(tmp_path / "lm.json", json.dumps({"classes": [{"id": 0, "name": "thing"}]}))
    m = rvault.register_model("detector", run="plain", weights=w2, labelmap=lm, version="1.0.0")
    assert m.label_map == {"classes": [{"id": 0, "name": "thing"}]}


def test_bad_inputs(rvault, tmp_path):
    w = _run(rvault, tmp_path, "r1")
    with pytest.raises(NotFound):
        rvault.register_model("detector", run="nope", weights=w, version="1.0.0")
    with pytest.raises(InputError):
        rvault.register_model("detector", run="r1", weights=w, version="1.0.0", thresholds=["score"])
    with pytest.raises(InputError):
        rvault.register_model("detector", run="r1", weights=tmp_path / "missing.pt", version="1.0.0")
    bad = write(tmp_path / "bad.json", "{not json")
    with pytest.raises(InputError):
        rvault.register_model("detector", run="r1", weights=w, labelmap=bad, version="1.0.0")
    assert rvault.models() == []


def test_reservation_by_another_run_blocks_that_version(rvault, tmp_path):
    w1 = _run(rvault, tmp_path, "r1", model="detector@1.0.0")
    w2 = _run(rvault, tmp_path, "r2")
    with pytest.raises(AlreadyExists) as e:
        rvault.register_model("detector", run="r2", weights=w2, version="1.0.0")
    assert "reserved by run r1" in e.value.what
    with pytest.raises(AlreadyExists):
        rvault.register_model("detector", run="r2", weights=w2, bump="auto")  # auto would pick 1.0.0 too
    m = rvault.register_model("detector", run="r1", weights=w1, bump="auto")
    assert m.version == "1.0.0"


def test_bundle_rows_are_write_once_and_kept_by_gc(rvault, tmp_path):
    from lensvault.catalog.registry_schema import model_files, model_versions

    m = rvault.register_model("detector", run="r1", weights=_run(rvault, tmp_path, "r1"), version="1.0.0",
                              thresholds={"score": 0.4})
    for stmt in (model_versions.update().values(release_notes="rewritten"), model_files.delete()):
        with pytest.raises(Exception, match="write-once"), rvault.catalog.begin() as conn:
            conn.execute(stmt)
    plan = rvault.gc(grace_seconds=0, force=True)
    doomed = {oid for oid, _ in plan.objects}
    assert m.bundle_oid not in doomed
    assert not doomed & {f["sha256"] for f in m.files}
    assert rvault.model("detector@1.0.0").bundle["thresholds"] == {"score": 0.4}


def test_register_appends_its_event(rvault, tmp_path):
    m = rvault.register_model("detector", run="r1", weights=_run(rvault, tmp_path, "r1"), version="1.0.0")
    ev = rvault.events(subject="detector", action="model.*")
    assert [(e["action"], e["subject"]) for e in ev] == [("model.register", "detector@1.0.0")]
    assert ev[0]["after"]["bundle_oid"] == m.bundle_oid and ev[0]["after"]["run_id"] == "r1"


def test_identical_content_refused_unless_forced(rvault, tmp_path):
    w = _run(rvault, tmp_path, "r1")
    rvault.register_model("detector", run="r1", weights=w, version="1.0.0")
    with pytest.raises(AlreadyExists, match=r"nothing changed since detector@1\.0\.0"):
        rvault.register_model("detector", run="r1", weights=w, bump="auto")
    m = rvault.register_model("detector", run="r1", weights=w, bump="auto", force=True)
    assert (m.version, m.bump) == ("1.0.1", "patch")


def test_a_run_registered_before_is_refused_whatever_came_between(rvault, tmp_path):
    # Not only the latest version: registering r1 again after r2's version would make a new
    # version that is r1's 1.0.0 again.
    w1 = _run(rvault, tmp_path, "r1", dataset="retail@1.0.0")
    w2 = _run(rvault, tmp_path, "r2", dataset="retail@1.1.0")
    rvault.register_model("detector", run="r1", weights=w1, version="1.0.0")
    rvault.register_model("detector", run="r2", weights=w2, bump="auto")
    for how in ({"bump": "auto"}, {"version": "2.0.0"}):
        with pytest.raises(AlreadyExists, match=r"run r1 is already registered as detector@1\.0\.0") as e:
            rvault.register_model("detector", run="r1", weights=w1, **how)
        assert "--force" in e.value.fix
    assert [m.version for m in rvault.models("detector")] == ["1.0.0", "1.1.0"]
    m = rvault.register_model("detector", run="r1", weights=w1, bump="auto", force=True)
    assert m.version not in ("1.0.0", "1.1.0")
    # Another setting is another model: the same run with other thresholds is registered.
    w3 = _run(rvault, tmp_path, "r3", dataset="retail@1.1.0")
    rvault.register_model("detector", run="r3", weights=w3, bump="auto")
    rvault.register_model("detector", run="r3", weights=w3, bump="auto", thresholds={"score": 0.7})


def test_registering_again_repairs_a_damaged_weights_object(rvault, tmp_path):
    """The store decides: a weights object damaged in the store is replaced by the run's file,
    which still hashes right; a file that changed is refused."""
    import os

    w = _run(rvault, tmp_path, "r1", dataset="retail@1.0.0")
    rvault.register_model("detector", run="r1", weights=w, version="1.0.0")
    obj = rvault.store.oid_to_path(sha256(w))
    os.chmod(obj, 0o644)
    obj.write_bytes(b"X" * len(w.read_bytes()))
    assert rvault.store.check(sha256(w)) == "corrupt"
    m = rvault.register_model("detector", run="r1", weights=w, version="1.0.1", force=True)
    assert rvault.store.check(sha256(w)) == "ok" and rvault.verify().ok
    assert m.version == "1.0.1"
