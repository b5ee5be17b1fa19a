"""End to end with the real `lensvault run`: a git repo, two runs on two dataset versions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ._helpers import lv, lv_json, make_coco

TRAIN = '''import os, pathlib
out = pathlib.Path(os.environ["LENSVAULT_OUTPUT_DIR"]); out.mkdir(parents=True, exist_ok=True)
(out / "model.pt").write_bytes(b"weights of " + os.environ["LENSVAULT_RUN_ID"].encode())
from lensvault.tracking import log_metrics
log_metrics({"AP50": float(os.environ.get("AP", "0.5"))})
'''


def _git(repo: Path, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_real_runs_become_1_0_0_and_1_1_0(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "t@example.com")
    _git(repo, "config", "user.name", "t")
    assert lv("init", repo).returncode == 0
    (repo / ".gitignore").write_text(".lensvault/\nruns/\n")
    for version, n in (("1.0.0", 6), ("1.1.0", 9)):
        images, ann = make_coco(tmp_path / f"src-{version}", n)
        r = lv("dataset", "snapshot", "retail", images, "--format", "coco", "--annotations", ann, "--version", version,
               "--split", "60/20/20", "--seed", "42", cwd=repo)
        assert r.returncode == 0, r.stderr
    (repo / "configs").mkdir()
    (repo / "configs" / "train.yaml").write_text("model:\n  architecture: yolov8n\ntrain:\n  lr: 0.01\n  seed: 7\n")
    (repo / "train.py").write_text(TRAIN)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "project")
    assert lv("config", "add", "configs/train.yaml", "--id", "C-01", cwd=repo).returncode == 0
    run_ids = []
    for data, version, ap in (("retail@1.0.0", "1.0.0", "0.6"), ("retail@1.1.0", "1.1.0", "0.7")):
        r = lv("run", "--dataset", data, "--config", "C-01", "--model", "detector", "--version", version, "--",
               sys.executable, "train.py", cwd=repo, env={"AP": ap})
        assert r.returncode == 0, r.stderr + r.stdout
        run_ids.append(next(x["run_id"] for x in lv_json("runs", "list", cwd=repo) if x["dataset"] == data))
    for rid in run_ids:
        r = lv("model", "register", "detector", "--run", rid, "--weights", repo / "runs" / rid / "model.pt",
               "--bump", "auto", cwd=repo)
        assert r.returncode == 0, r.stderr
    m1, m2 = (lv_json("model", "show", f"detector@{v}", cwd=repo) for v in ("1.0.0", "1.1.0"))
    assert (m1["run_id"], m2["run_id"]) == tuple(run_ids)
    assert m2["changes"]["bump"] == "minor"
    assert m2["changes"]["decision"]["reasons"]["minor"] == ["dataset changed: retail@1.0.0 → retail@1.1.0"]
    [delta] = m2["changes"]["metric_deltas"]  # what the runs logged, compared with each other
    assert delta["source"]["kind"] == delta["compared_with"]["kind"] == "run"
    assert abs(delta["overall"]["AP50"]["delta"] - 0.1) < 1e-9
    assert m2["code_commit"] and m2["config"] == "C-01"

    for v in ("1.0.0", "1.1.0"):
        assert lv("model", "promote", f"detector@{v}", "production", *(["--new"] if v == "1.0.0" else []),
                  cwd=repo).returncode == 0
    assert lv("model", "rollback", "detector", "production", cwd=repo).returncode == 0
    hist = lv_json("model", "history", "detector", cwd=repo)
    assert [(h["from"], h["to"], h["action"]) for h in hist] == [
        (None, "1.0.0", "promote"), ("1.0.0", "1.1.0", "promote"), ("1.1.0", "1.0.0", "rollback")]
    dest = tmp_path / "deploy"
    assert lv("model", "pull", "detector@production", dest, cwd=repo).returncode == 0
    weights = repo / "runs" / run_ids[0] / "model.pt"
    assert (dest / "model.pt").read_bytes() == weights.read_bytes()
    assert json.loads((dest / "bundle.json").read_text())["run_id"] == run_ids[0]

    weights.write_bytes(b"edited after the run")
    r = lv("model", "register", "detector", "--run", run_ids[0], "--weights", weights, "--version", "1.0.1", cwd=repo)
    assert r.returncode == 5 and "changed after run" in r.stderr
