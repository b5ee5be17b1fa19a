"""The repo's example training script under `lensvault run`: refused dirty or with an unregistered
config, recorded in full when clean."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "train_detector.py"


def test_example_detector_end_to_end(sqlite_project):
    p = sqlite_project
    shutil.copy(EXAMPLE, p.root / "train_detector.py")
    run = ["run", "--dataset", "shapes@1.0.0", "--config", "C-01", "--", sys.executable, "train_detector.py"]
    r = p.lensvault(*run, timeout=900)
    assert r.returncode == 7 and "train_detector.py" in r.stderr  # untracked: dirty tree
    p.commit_all("add the example")
    r = p.lensvault("run", "--dataset", "shapes@1.0.0", "--config", "C-404", "--", sys.executable,
                    "train_detector.py", timeout=900)
    assert r.returncode == 7 and "C-404 is not registered" in r.stderr
    r = p.lensvault(*run, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    rid = next(x for x in r.stderr.splitlines() if x.startswith("Run ")).split()[1]
    s = json.loads(p.lensvault("runs", "show", rid, "--json").stdout)
    assert s["status"] == "succeeded" and s["clean"] is True and s["seeds"]["train"] == 2024
    paths = {a["path"] for a in s["artifacts"]}
    assert {"model.npz", "labelmap.json", "predictions.json", "metrics.json"} <= paths
    assert s["metrics"]
    text = p.lensvault("runs", "show", rid).stdout
    assert rid in text and "model.npz" in text
