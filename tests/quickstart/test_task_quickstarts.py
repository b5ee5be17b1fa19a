"""`lensvault quickstart --task segmentation|classification`: the versioning loop on another task,
through the real CLI, generated data and no network."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

VENV_BIN = str(Path(sys.executable).parent)


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LENSVAULT_")}
    env["PATH"] = os.pathsep.join([VENV_BIN, env.get("PATH", "")])
    return env


@pytest.mark.parametrize("task, name, model, eval_task, headline", [
    ("segmentation", "streets", "segmenter", "semantic-segmentation", "mIoU"),
    ("classification", "swatches", "classifier", "classification", "accuracy"),
])
def test_task_quickstart_tells_the_loop(tmp_path, task, name, model, eval_task, headline):
    root = tmp_path / "demo"
    r = subprocess.run([sys.executable, "-m", "lensvault.cli.main", "quickstart", str(root), "--task", task, "--json"],
                       env=_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    summary = json.loads(r.stdout)
    assert summary["datasets"] == [f"{name}@1.0.0", f"{name}@1.0.1"]  # the label fix is a PATCH
    assert summary["models"] == [f"{model}@1.0.0", f"{model}@1.1.0"]
    assert summary["production"] == f"{model}@1.1.0"
    story = r.stderr
    assert f"task={eval_task}" in story and "confusion matrix" in story and "Suggested bump: PATCH" in story

    import lensvault

    with lensvault.open(root) as vault:
        evals = vault.evaluations(dataset=f"{name}@1.0.1").to_dict()
        assert len(evals) == 2 and all(e["task"] == eval_task and e["per_class"] for e in evals)
        assert all(e["overall"][headline] is not None for e in evals)
        bundle = vault.model(f"{model}@1.1.0").to_dict()
        assert bundle["task"] == eval_task
        assert bundle["changes"]["bump"] == "minor"
        why = vault.why(f"{model}@1.0.0", f"{model}@1.1.0").to_dict()
        assert why["explanations"][0]["factor"] == "data"


def test_unknown_task_is_refused(tmp_path):
    r = subprocess.run([sys.executable, "-m", "lensvault.cli.main", "quickstart", str(tmp_path / "d"), "--task", "ocr"],
                       env=_env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "ocr" in r.stderr
