"""A named pipe (or other special file) named like an annotation file is never opened: opening a
FIFO waits for a writer forever. Detection (``--format auto``) sniffs regular files only, the
importers refuse to read anything else, and a snapshot fails with the pipe's path instead of
hanging. Each case runs in a subprocess with a timeout, so a regression fails instead of
hanging the suite."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from .conftest import BCCD

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "format-samples"

DETECT = """
import sys
from pathlib import Path
from lensvault.annotations import detect
print(detect(Path(sys.argv[1])).format)
"""


def _voc(root: Path) -> Path:
    shutil.copytree(BCCD, root)  # BCCD/{Annotations,ImageSets,JPEGImages}
    return root


def _yolo(root: Path) -> Path:
    """images/ + labels/ + classes.txt, no data.yaml: detection has to read the label lines."""
    for name in ("a", "b"):
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "labels").mkdir(exist_ok=True)
        Image.new("RGB", (32, 24), (10, 20, 30)).save(root / "images" / f"{name}.png")
        (root / "labels" / f"{name}.txt").write_text("0 0.5 0.5 0.25 0.25\n")
    (root / "classes.txt").write_text("cell\n")
    return root


def _labelme(root: Path) -> Path:
    root.mkdir()
    for name in ("a", "b"):
        Image.new("RGB", (32, 24), (10, 20, 30)).save(root / f"{name}.png")
        (root / f"{name}.json").write_text(json.dumps({
            "version": "5.0.1", "flags": {}, "imagePath": f"{name}.png", "imageData": None,
            "imageHeight": 24, "imageWidth": 32,
            "shapes": [{"label": "cell", "points": [[2, 2], [10, 12]], "shape_type": "rectangle",
                        "group_id": None, "flags": {}}]}))
    return root


def _coco(root: Path) -> Path:
    shutil.copytree(SAMPLES / "coco_dataset" / "coco_instances", root)
    return root


CASES = [
    # (dataset, where the pipe is, the format detection must still find)
    (_voc, "x.json", "voc"),  # a JSON anywhere is sniffed as possible COCO or labelme
    (_voc, "BCCD/Annotations/zz.xml", "voc"),  # beside the real XML files
    (_yolo, "labels/zz.txt", "yolo"),  # among the label files whose lines are sniffed
    (_labelme, "zz.json", "labelme"),
    (_coco, "annotations/zz.json", "coco"),
]


@pytest.mark.parametrize(("make", "pipe", "expected"), CASES, ids=[f"{c[0].__name__[1:]}-{c[1]}" for c in CASES])
def test_detection_and_snapshot_never_open_a_pipe(tmp_path, make, pipe, expected):
    root = make(tmp_path / "src")
    os.mkfifo(root / pipe)
    r = subprocess.run([sys.executable, "-c", DETECT, str(root)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == expected

    lv = [sys.executable, "-m", "lensvault.cli.main", "--vault", str(tmp_path / "vault")]
    subprocess.run([*lv[:3], "init", str(tmp_path / "vault")], capture_output=True, check=True, timeout=120)
    r = subprocess.run([*lv, "dataset", "snapshot", "ds", str(root), "--format", "auto", "--version", "1.0.0"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    assert Path(pipe).name in r.stdout + r.stderr and "not a regular file" in r.stdout + r.stderr
    listed = subprocess.run([*lv, "dataset", "list", "--json"], capture_output=True, text=True, timeout=120)
    assert json.loads(listed.stdout) == []  # nothing was recorded
