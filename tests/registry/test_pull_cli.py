"""Pull (byte-identical, verified, all-or-nothing) and the whole flow through the real CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lensvault.errors import InputError, IntegrityError

from ._helpers import insert_run, lv, lv_json, metrics, sha256, write


def test_pull_gives_back_byte_identical_files(rvault, tmp_path):
    weights = write(tmp_path / "out" / "best.pt", os.urandom(300_000))
    extra = write(tmp_path / "out" / "ema.pt", os.urandom(1000))
    lm = write(tmp_path / "classes.yaml", "names:\n  0: person\n  1: cart\n  2: shelf\n")
    pre = write(tmp_path / "pre.toml", "size = [640, 640]\nnormalize = true\n")
    insert_run(rvault, "r1", config_id="C-01", artifacts={"best.pt": weights, "ema.pt": extra})
    m = rvault.register_model("detector", run="r1", weights=[weights, extra], labelmap=lm, preprocess=pre,
                              version="1.0.0")
    res = rvault.pull_model("detector@1.0.0", tmp_path / "pulled")
    got = tmp_path / "pulled"
    assert (got / "best.pt").read_bytes() == weights.read_bytes()
    assert (got / "ema.pt").read_bytes() == extra.read_bytes()
    assert (got / "labelmap.yaml").read_bytes() == lm.read_bytes()
    assert (got / "preprocess.toml").read_bytes() == pre.read_bytes()
    assert sha256(got / "bundle.json") == m.bundle_oid == res.bundle_oid
    bundle = json.loads((got / "bundle.json").read_text())
    assert bundle["preprocess"] == {"size": [640, 640], "normalize": True}
    assert sorted(p.name for p in got.iterdir()) == sorted([*(f["name"] for f in m.files), "bundle.json"])
    for f in m.files:
        assert sha256(got / f["name"]) == f["sha256"]


def test_pull_refuses_a_non_empty_destination_and_corrupt_objects(rvault, tmp_path):
    w = write(tmp_path / "out" / "model.pt", b"the weights")
    insert_run(rvault, "r1", config_id="C-01", artifacts={"model.pt": w})
    m = rvault.register_model("detector", run="r1", weights=w, version="1.0.0")
    write(tmp_path / "busy" / "keep.txt", "mine")
    with pytest.raises(InputError, match="not empty"):
        rvault.pull_model("detector@1.0.0", tmp_path / "busy")
    assert (tmp_path / "busy" / "keep.txt").read_text() == "mine"
    obj = rvault.store.oid_to_path(sha256(w))
    os.chmod(obj, 0o644)
    obj.write_bytes(b"bit rot")
    with pytest.raises(IntegrityError, match=r"model\.pt"):
        rvault.pull_model("detector@1.0.0", tmp_path / "dest")
    assert not (tmp_path / "dest").exists()
    assert not [p for p in tmp_path.iterdir() if "lensvault-tmp" in p.name]
    assert m.bundle_oid  # the bundle itself was fine


def test_end_to_end_through_the_cli(rvault, tmp_path):
    """Two runs on two dataset versions -> detector@1.0.0 and @1.1.0; promote, roll back, pull."""
    root = rvault.root
    w1 = write(tmp_path / "o1" / "model.pt", os.urandom(5000))
    w2 = write(tmp_path / "o2" / "model.pt", os.urandom(5000))
    insert_run(rvault, "run-1", dataset="retail@1.0.0", config_id="C-01", artifacts={"model.pt": w1},
               metrics=metrics(0.61, {"person": 0.5}))
    insert_run(rvault, "run-2", dataset="retail@1.1.0", config_id="C-01", artifacts={"model.pt": w2},
               metrics=metrics(0.66, {"person": 0.58}))
    r = lv("model", "register", "detector", "--run", "run-1", "--weights", w1, "--bump", "auto",
           "--threshold", "score=0.35", "--caveat", "few night images", cwd=root)
    assert r.returncode == 0, r.stderr
    assert "Registered detector@1.0.0 (first version)" in r.stdout
    j = lv_json("model", "register", "detector", "--run", "run-2", "--weights", w2, "--bump", "auto",
                "--threshold", "score=0.35", cwd=root)
    assert (j["version"], j["changes"]["bump"]) == ("1.1.0", "minor")
    show = lv_json("model", "show", "detector@1.1.0", cwd=root)
    assert show["dataset"] == "retail@1.1.0" and show["config"] == "C-01" and show["run_id"] == "run-2"
    assert show["code_commit"] == "a" * 40
    [logged] = show["metrics"]  # the runs have no evaluations: one group, what the run logged
    assert logged["source"]["label"] == "logged by the run run-2 (trained on retail@1.1.0)"
    assert logged["overall"]["AP50"] == 0.66
    [delta] = show["changes"]["metric_deltas"]
    assert delta["per_class"]["person"]["AP50"]["delta"] == pytest.approx(0.08)
    assert delta["compared_with"]["run_id"] == "run-1" and delta["same_data"] is False
    assert {"name": "model.pt", "role": "weights", "sha256": sha256(w2), "size": 5000} in show["files"]
    assert "## Dataset changes since retail@1.0.0" in show["release_notes"]
    text = lv("model", "show", "detector@1.1.0", cwd=root).stdout
    assert "# detector 1.1.0" in text and "sha256:" + sha256(w2) in text
    assert "### Logged by the run run-2 (trained on retail@1.1.0)" in text
    assert "Δ against 1.0.0: logged by the run run-1 (trained on retail@1.0.0) (not the same data)." in text

    r = lv("model", "register", "detector", "--run", "run-2", "--weights", w2, "--version", "1.1.1", cwd=root)
    assert r.returncode == 8 and "requires MINOR: thresholds changed" in r.stderr  # no --threshold this time
    r = lv("model", "register", "detector", "--run", "run-2", "--weights", w2, "--version", "1.1.1",
           "--threshold", "score=0.35", cwd=root)
    assert r.returncode == 4 and "nothing changed since detector@1.1.0" in r.stderr

    for ref, new in (("detector@1.0.0", ["--new"]), ("detector@1.1.0", [])):
        assert lv("model", "promote", ref, "production", "--reason", f"ship {ref}", *new, cwd=root).returncode == 0
    assert lv_json("model", "show", "detector@production", cwd=root)["version"] == "1.1.0"
    assert lv("model", "rollback", "detector", "production", cwd=root).returncode == 0
    assert lv_json("model", "show", "detector@production", cwd=root)["version"] == "1.0.0"
    listing = lv_json("model", "list", cwd=root)
    assert [(x["ref"], x["aliases"]) for x in listing] == [("detector@1.0.0", ["production"]), ("detector@1.1.0", [])]

    dest = tmp_path / "deploy"
    out = lv_json("model", "pull", "detector@production", dest, cwd=root)
    assert out["ref"] == "detector@1.0.0"
    assert (dest / "model.pt").read_bytes() == w1.read_bytes()

    events = lv_json("events", "--subject", "detector", cwd=root)
    assert [e["action"] for e in events] == ["model.register", "model.register", "model.promote", "model.promote",
                                             "model.rollback"]
    failed = lv("model", "register", "detector", "--run", "run-2", "--weights", w2, "--version", "1.0.0", cwd=root)
    assert failed.returncode == 4
    assert len(lv_json("events", "--subject", "detector", cwd=root)) == 5  # a refused write leaves no event


def test_pull_into_a_symlink_is_refused(rvault, tmp_path):
    w = write(tmp_path / "out" / "model.pt", b"the weights")
    insert_run(rvault, "r1", config_id="C-01", artifacts={"model.pt": w})
    rvault.register_model("detector", run="r1", weights=w, version="1.0.0")
    (tmp_path / "real").mkdir()
    for name, target in (("to-folder", tmp_path / "real"), ("dangling", tmp_path / "nowhere")):
        (tmp_path / name).symlink_to(target)
        with pytest.raises(InputError, match="symbolic link"):
            rvault.pull_model("detector@1.0.0", tmp_path / name)
    assert os.listdir(tmp_path / "real") == [] and not (tmp_path / "nowhere").exists()


def test_a_pull_killed_before_its_rename_leaves_nothing_after_gc(rvault, tmp_path):
    import signal
    import subprocess
    import sys

    w = write(tmp_path / "out" / "model.pt", b"the weights" * 1000)
    insert_run(rvault, "r1", config_id="C-01", artifacts={"model.pt": w})
    rvault.register_model("detector", run="r1", weights=w, version="1.0.0")
    (tmp_path / "pulls").mkdir()
    script = ("import os, signal, sys, lensvault\n"
              "v = lensvault.open(sys.argv[1])\n"
              "os.rename = lambda *a: os.kill(os.getpid(), signal.SIGKILL)\n"
              "v.pull_model('detector@1.0.0', sys.argv[2])\n")
    r = subprocess.run([sys.executable, "-c", script, str(rvault.root), str(tmp_path / "pulls" / "dest")],
                       capture_output=True, text=True)
    assert r.returncode == -signal.SIGKILL, r.stderr
    (left,) = os.listdir(tmp_path / "pulls")  # the half-made bundle folder, hidden beside DEST
    plan = rvault.gc()
    assert [(x.kind, Path(x.path).name) for x in plan.leftovers] == [("staging folder", left)]
    plan.execute()
    assert os.listdir(tmp_path / "pulls") == []
    assert rvault.pull_model("detector@1.0.0", tmp_path / "pulls" / "dest").ref == "detector@1.0.0"
