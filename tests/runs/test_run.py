"""`lensvault run` end to end in real subprocesses: success, failure, Ctrl-C, dirty trees,
unregistered configs, concurrent runs, and the reading commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.runs.conftest import GIT_ENV

RUN = ["run", "--dataset", "shapes@1.0.0", "--config", "C-01"]


def show(project, run_id) -> dict:
    r = project.lensvault("runs", "show", run_id, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def run_id_of(result) -> str:
    line = next(x for x in result.stderr.splitlines() if x.startswith("Run "))
    return line.split()[1]


def test_clean_run_records_everything(sqlite_project):
    p = sqlite_project
    r = p.lensvault(*RUN, "--model", "det", "--version", "1.0.0", "--", sys.executable, "train.py")
    assert r.returncode == 0, r.stderr
    assert "images 12" in r.stdout and "seed 2024" in r.stdout and "to stderr" in r.stdout  # streamed
    rid = run_id_of(r)
    s = show(p, rid)
    for key in ("run_id", "code_commit", "clean", "dataset", "config", "seeds", "status", "metrics", "artifacts"):
        assert key in s
    assert s["status"] == "succeeded" and s["clean"] is True and s["exit_code"] == 0
    assert s["code_commit"] == p.git("rev-parse", "HEAD").strip()
    assert s["dataset"] == "shapes@1.0.0" and s["config"] == "C-01" and s["model"] == "det@1.0.0"
    assert s["seeds"] == {"train": 2024, "split": 42}
    assert s["command"] == [sys.executable, "train.py"]
    assert s["metrics"]["loss"] == pytest.approx(1 / 50) and s["metrics"]["AP50"] == 0.75
    assert s["metric_points"] == 100 + 2 + 2  # 50 steps x 2, two per-class, metrics.json: AP50 + square
    assert s["metrics_per_class"]["circle"] == {"AP50": 0.61, "AP50[time_of_day=night]": 0.42}
    assert s["metrics_per_class"]["square"] == {"AP50": 0.5}
    assert s["params"] == {"lr": 0.01, "model.depth": 3}
    arts = {a["path"]: a for a in s["artifacts"]}
    assert set(arts) == {"model.npz", "metrics.json"}
    import hashlib

    out = p.root / "runs" / rid
    assert arts["model.npz"]["sha256"] == hashlib.sha256((out / "model.npz").read_bytes()).hexdigest()
    assert arts["model.npz"]["size"] == 700
    assert s["environment"]["python"]["version"] and "packages" in s["environment"]
    log = p.lensvault("runs", "log", rid).stdout
    assert "images 12" in log and "to stderr" in log
    text = p.lensvault("runs", "show", rid).stdout
    assert "(clean commit)" in text and "model.npz" in text and "DIRTY" not in text
    listed = json.loads(p.lensvault("runs", "list", "--json").stdout)
    assert [x["run_id"] for x in listed] == [rid] and listed[0]["metrics"]["AP50"] == 0.75
    # the next run starts on a clean tree again: run outputs are ignored by git
    assert p.lensvault("preflight", "--dataset", "shapes@1.0.0", "--config", "C-01").returncode == 0


def test_failing_command_is_recorded_as_failed(sqlite_project):
    p = sqlite_project
    r = p.lensvault(*RUN, "--model", "det", "--version", "2.0.0", "--", sys.executable, "train.py",
                    env={"EXIT_WITH": "3", "STEPS": "5"})
    assert r.returncode == 3
    s = show(p, run_id_of(r))
    assert s["status"] == "failed" and s["exit_code"] == 3
    assert s["metrics"]["loss"] == pytest.approx(1 / 5)  # what it logged before failing is kept
    assert "to stderr" in p.lensvault("runs", "log", s["run_id"]).stdout
    # a failed run gives its model version back
    assert p.lensvault("preflight", "--dataset", "shapes@1.0.0", "--config", "C-01",
                       "--model", "det", "--version", "2.0.0").returncode == 0


def test_command_not_found_is_a_failed_run(sqlite_project):
    r = sqlite_project.lensvault(*RUN, "--", "no-such-program-xyz")
    assert r.returncode == 127
    s = show(sqlite_project, run_id_of(r))
    assert s["status"] == "failed" and "could not start" in sqlite_project.lensvault("runs", "log", s["run_id"]).stdout


def test_dirty_tree_and_unregistered_config_are_refused(sqlite_project):
    p = sqlite_project
    (p.root / "scratch.py").write_text("x = 1\n")
    r = p.lensvault(*RUN, "--", sys.executable, "train.py")
    assert r.returncode == 7 and "clean" in r.stderr and "scratch.py" in r.stderr and "fix:" in r.stderr
    r = p.lensvault("run", "--dataset", "shapes@1.0.0", "--config", "C-42", "--", sys.executable, "train.py")
    assert r.returncode == 7 and "C-42 is not registered" in r.stderr
    assert json.loads(p.lensvault("runs", "list", "--json").stdout) == []  # nothing started
    r = p.lensvault(*RUN, "--allow-dirty", "--", sys.executable, "train.py", env={"STEPS": "2"})
    assert r.returncode == 0 and "DIRTY" in r.stderr
    s = show(p, run_id_of(r))
    assert s["clean"] is False and s["dirty"] is True
    assert "DIRTY" in p.lensvault("runs", "show", s["run_id"]).stdout
    assert "DIRTY" in p.lensvault("runs", "list").stdout


def test_preflight_json_reports_failures(sqlite_project):
    p = sqlite_project
    (p.root / "configs" / "base.yaml").write_text("seed: 9\n")
    r = p.lensvault("preflight", "--dataset", "shapes@1.0.0", "--config", "C-01", "--json")
    assert r.returncode == 7
    rep = json.loads(r.stdout)
    assert rep["ok"] is False and {c["check"] for c in rep["checks"] if not c["ok"]} == {"clean", "config"}


def test_ctrl_c_stops_the_child_and_records_interrupted(sqlite_project, tmp_path):
    p = sqlite_project
    pidfile = tmp_path / "child.pid"
    (p.root / "slow.py").write_text(
        "import os, sys, time, lensvault\n"
        "lensvault.log_metrics({'loss': 0.5}, step=0)\n"
        "print('started', flush=True)\n"
        f"open({str(pidfile)!r}, 'w').write(str(os.getpid()))\n"
        "time.sleep(60)\n")
    p.commit_all("slow")
    proc = subprocess.Popen([sys.executable, "-m", "lensvault.cli.main", *RUN, "--", sys.executable, "slow.py"],
                            cwd=p.root, env={**os.environ, **GIT_ENV, "LENSVAULT_DIR": str(p.root)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not pidfile.exists() or not pidfile.read_text():
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    child = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)
    runs = json.loads(p.lensvault("runs", "list", "--json").stdout)
    assert len(runs) == 1 and runs[0]["status"] == "interrupted"
    assert runs[0]["metrics"] == {"loss": 0.5}  # flushed at exit by the interrupted child
    assert "started" in p.lensvault("runs", "log", runs[0]["run_id"]).stdout


def test_two_runs_at_once_lose_nothing(sqlite_project):
    p = sqlite_project
    env = {**os.environ, **GIT_ENV, "LENSVAULT_DIR": str(p.root), "STEPS": "3000"}
    procs = [subprocess.Popen([sys.executable, "-m", "lensvault.cli.main", *RUN, "--", sys.executable, "train.py"],
                              cwd=p.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    for proc in procs:
        proc.communicate(timeout=300)
        assert proc.returncode == 0
    runs = json.loads(p.lensvault("runs", "list", "--json").stdout)
    assert len(runs) == 2 and {r["status"] for r in runs} == {"succeeded"}
    for r in runs:
        assert show(p, r["run_id"])["metric_points"] == 3000 * 2 + 4


def test_runs_compare_shows_differences(sqlite_project):
    p = sqlite_project
    a = run_id_of(p.lensvault(*RUN, "--", sys.executable, "train.py", env={"STEPS": "3"}))
    (p.root / "configs" / "base.yaml").write_text("lr: 0.02\nepochs: 2\nseed: 2024\nmodel:\n  depth: 3\n")
    p.commit_all("lr")
    assert p.lensvault("config", "add", "configs/base.yaml", "--id", "C-02").returncode == 0
    b = run_id_of(p.lensvault("run", "--dataset", "shapes@1.0.0", "--config", "C-02", "--",
                              sys.executable, "train.py", env={"STEPS": "6"}))
    d = json.loads(p.lensvault("runs", "compare", a, b, "--json").stdout)
    cfg = {x["key"]: x for x in d["config"]}
    assert cfg["lr"]["differs"] and cfg["lr"]["a"] == 0.01 and cfg["lr"]["b"] == 0.02 and not cfg["seed"]["differs"]
    run = {x["key"]: x for x in d["run"]}
    assert run["code_commit"]["differs"] and not run["dataset"]["differs"]
    m = {x["key"]: x for x in d["metrics"]}
    assert m["loss"]["differs"] and not m["AP50"]["differs"]
    assert d["environment"]["same"] is True
    text = p.lensvault("runs", "compare", a, b).stdout
    assert "lr" in text and "0.0200" in text and "* " in text
