"""No list is cut without saying so: the manifest keeps the first findings of an import and
counts all of them (in total and per code); the CLI says "… and N more" from those counts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from lensvault.datasets.vision import MAX_FINDINGS
from lensvault.render.datasets import SHOW


def lv(vault, *args):
    return subprocess.run([sys.executable, "-m", "lensvault.cli.main", "--vault", str(vault.root), *map(str, args)],
                          capture_output=True, text=True)


def many_findings(root: Path, zero_area: int, outside: int) -> Path:
    """One image with ``zero_area`` zero-width boxes and ``outside`` boxes past its border."""
    (root / "images").mkdir(parents=True)
    Image.new("RGB", (40, 30), (5, 6, 7)).save(root / "images" / "a.png")
    boxes = [[1, 1, 0, 5]] * zero_area + [[30, 20, 20, 20]] * outside
    doc = {"images": [{"id": 1, "file_name": "a.png", "width": 40, "height": 30}],
           "categories": [{"id": 1, "name": "thing"}],
           "annotations": [{"id": n + 1, "image_id": 1, "category_id": 1, "bbox": b, "iscrowd": 0}
                           for n, b in enumerate(boxes)]}
    (root / "annotations").mkdir()
    (root / "annotations" / "instances_train.json").write_text(json.dumps(doc))
    return root


def test_the_manifest_counts_every_finding_beyond_the_ones_it_keeps(sqlite_vault, tmp_path):
    src = many_findings(tmp_path / "src", zero_area=230, outside=40)
    r = lv(sqlite_vault, "dataset", "snapshot", "ds", src, "--format", "coco", "--version", "1.0.0", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert len(out["findings"]) == MAX_FINDINGS
    assert out["findings_total"] == 270
    assert out["findings_by_code"] == {"box-outside-image": 40, "zero-area-box": 230}

    source = sqlite_vault.dataset("ds@1.0.0").manifest().source
    assert len(source["findings"]) == MAX_FINDINGS
    assert (source["findings_total"], source["findings_by_code"]) == (270, out["findings_by_code"])

    text = lv(sqlite_vault, "dataset", "show", "ds@1.0.0", "--json").stdout
    assert json.loads(text)["source"]["findings_total"] == 270

    # The person reads the same facts: the total, per code, and how many are not shown.
    src2 = many_findings(tmp_path / "src2", zero_area=230, outside=40)
    r = lv(sqlite_vault, "dataset", "snapshot", "other", src2, "--format", "coco", "--version", "1.0.0")
    assert r.returncode == 0, r.stderr
    assert "270 validation finding(s): box-outside-image 40, zero-area-box 230" in r.stdout
    assert f"… and {270 - SHOW} more ({MAX_FINDINGS} kept in the manifest)" in r.stdout
    shown = lv(sqlite_vault, "dataset", "show", "other@1.0.0").stdout
    assert "270 validation finding(s): box-outside-image 40, zero-area-box 230" in shown


def test_a_short_list_is_whole_and_says_so(sqlite_vault, tmp_path):
    src = many_findings(tmp_path / "src", zero_area=SHOW + 5, outside=0)
    r = lv(sqlite_vault, "dataset", "snapshot", "ds", src, "--format", "coco", "--version", "1.0.0")
    assert r.returncode == 0, r.stderr
    assert f"{SHOW + 5} validation finding(s): zero-area-box {SHOW + 5}" in r.stdout
    assert "… and 5 more: `lensvault dataset show ds@1.0.0 --json`" in r.stdout
    source = sqlite_vault.dataset("ds@1.0.0").manifest().source
    assert (len(source["findings"]), source["findings_total"]) == (SHOW + 5, SHOW + 5)
