from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from lensvault.demo.detector import Model

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "examples" / "train_detector.py"
CONFIGS = REPO / "examples" / "configs"
PACKAGED = REPO / "src" / "lensvault" / "demo" / "files"


def _run(data: Path, out: Path, *extra: str, config: str = "detector.yaml") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LENSVAULT_")}
    env.update(
        {
            "LENSVAULT_DATA_DIR": str(data),
            "LENSVAULT_CONFIG": str(CONFIGS / config),
            "LENSVAULT_OUTPUT_DIR": str(out),
            "LENSVAULT_SEED": "42",
        }
    )
    return subprocess.run(
        [sys.executable, str(SCRIPT), *extra], env=env, capture_output=True, text=True, timeout=120
    )


def test_script_trains_and_writes_its_outputs(demo_data, tmp_path: Path) -> None:
    # The layout `lensvault run` hands over: a splits.json next to annotations/.
    test_names = [f"img_{i - 1:04d}.png" for i in demo_data.split["test"]]
    splits = {
        "train": [f"img_{i - 1:04d}.png" for i in demo_data.split["train"]],
        "val": [f"img_{i - 1:04d}.png" for i in demo_data.split["val"]],
        "test": test_names,
    }
    (demo_data.root / "splits.json").write_text(json.dumps(splits))
    try:
        result = _run(demo_data.root, tmp_path / "out", "--eval-annotations",
                      str(demo_data.root / "corrections" / "instances.json"))
    finally:
        (demo_data.root / "splits.json").unlink()
    assert result.returncode == 0, result.stderr
    assert "epoch  60/60" in result.stdout
    out = tmp_path / "out"
    assert json.loads((out / "labelmap.json").read_text()) == {"1": "circle", "2": "square", "3": "triangle"}
    predictions = json.loads((out / "predictions.json").read_text())
    assert predictions and {p["image_id"] for p in predictions} <= set(demo_data.split["test"])
    assert set(predictions[0]) == {"image_id", "category_id", "bbox", "score"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["eval_split"] == "test" and metrics["eval_images"] == len(test_names)
    assert metrics["train_images"] == len(splits["train"])
    assert metrics["ap50"] >= 0.9
    assert set(metrics["per_slice"]) == {"time_of_day=day", "time_of_day=night"}
    assert Model.load(out / "model.npz").labelmap == {1: "circle", 2: "square", 3: "triangle"}


def test_script_without_splits_uses_a_seeded_split_and_same_weights(demo_data, tmp_path: Path) -> None:
    first = _run(demo_data.root, tmp_path / "a", config="detector-hotfix.yaml")
    second = _run(demo_data.root, tmp_path / "b", config="detector-hotfix.yaml")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert (tmp_path / "a" / "model.npz").read_bytes() == (tmp_path / "b" / "model.npz").read_bytes()
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert metrics["train_images"] + metrics["eval_images"] < 120 and metrics["train_images"] > 70
    assert Model.load(tmp_path / "a" / "model.npz").params["preprocess.brightness_threshold"] == 0.12


def test_examples_are_the_files_the_quickstart_copies() -> None:
    assert SCRIPT.read_bytes() == (PACKAGED / "train_detector.py").read_bytes()
    for name in ("detector.yaml", "detector-hotfix.yaml"):
        assert (CONFIGS / name).read_bytes() == (PACKAGED / name).read_bytes()
