"""A diff names what changed by its kind: masks, polygons, keypoints and image labels are not
"boxes" (the detection path's word), in the summary, the bump reasons, `dataset diff` and
`dataset diff --json`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import BCCD

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "format-samples"
IMAGES = sorted((BCCD / "JPEGImages").glob("*.jpg"))[:2]  # 640x480 each


def lv(vault, *args):
    return subprocess.run([sys.executable, "-m", "lensvault.cli.main", "--vault", str(vault.root), *map(str, args)],
                          capture_output=True, text=True)


def _square(x: float, y: float, s: float) -> list[float]:
    return [x, y, x + s, y, x + s, y + s, x, y + s]


def _rle(x: int, y: int, s: int) -> dict:
    import numpy as np
    from pycocotools import mask as mask_utils

    m = np.zeros((480, 640), dtype=np.uint8, order="F")
    m[y:y + s, x:x + s] = 1
    rle = mask_utils.encode(m)
    return {"size": [480, 640], "counts": rle["counts"].decode("ascii")}


def _coco(root: Path, kind: str, edited: bool) -> Path:
    """Two BCCD images with three annotations of one kind; ``edited``: the first relabeled, the
    second removed."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    for p in IMAGES:
        shutil.copyfile(p, root / "images" / p.name)
    anns = []
    for n, (x, y) in enumerate([(10, 10), (200, 100), (300, 300)]):
        a = {"id": n + 1, "image_id": 1, "category_id": 1, "bbox": [x, y, 50, 50], "iscrowd": 0}
        if kind == "polygon":
            a["segmentation"] = [_square(x, y, 50)]
        elif kind == "mask":
            a["segmentation"] = _rle(x, y, 50)
        elif kind == "keypoints":
            a["keypoints"] = [x + 5, y + 5, 2, x + 20, y + 20, 2, x + 40, y + 40, 1]
            a["num_keypoints"] = 3
        anns.append(a)
    if edited:
        anns[0]["category_id"] = 2
        del anns[1]
    cats = [{"id": 1, "name": "RBC"}, {"id": 2, "name": "WBC"}]
    if kind == "keypoints":
        for c in cats:
            c.update(keypoints=["a", "b", "c"], skeleton=[[1, 2], [2, 3]])
    doc = {"images": [{"id": i + 1, "file_name": f"images/{p.name}", "width": 640, "height": 480}
                      for i, p in enumerate(IMAGES)], "annotations": anns, "categories": cats}
    (root / "annotations.json").write_text(json.dumps(doc))
    return root


def _labels(root: Path, edited: bool) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for p in IMAGES:
        shutil.copyfile(p, root / p.name)
    a, b = (p.name for p in IMAGES)
    rows = [f"{a},RBC;WBC", f"{b},RBC"] if not edited else [f"{a},RBC", f"{b},WBC"]
    (root / "labels.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
    return root


def _snapshot_pair(vault, tmp_path: Path, kind: str) -> None:
    if kind == "label":
        vault.snapshot("d", _labels(tmp_path / "a", False), format="labels", version="1.0.0")
        vault.snapshot("d", _labels(tmp_path / "b", True), format="labels", version="1.0.1")
    else:
        a, b = _coco(tmp_path / "a", kind, False), _coco(tmp_path / "b", kind, True)
        vault.snapshot("d", a, format="coco", annotations=a / "annotations.json", version="1.0.0")
        vault.snapshot("d", b, format="coco", annotations=b / "annotations.json", version="1.0.1")


@pytest.mark.parametrize(("kind", "stored", "noun"), [
    ("polygon", "polygon", "polygon"), ("mask", "rle", "mask"),
    ("keypoints", "keypoints", "keypoints annotation"), ("label", "label", "image label"),
    ("bbox", "bbox", "box"),
])
def test_diff_names_the_kind_that_changed(sqlite_vault, tmp_path, kind, stored, noun):
    nouns = noun + ("es" if noun == "box" else "s")
    _snapshot_pair(sqlite_vault, tmp_path, kind)
    out = json.loads(lv(sqlite_vault, "dataset", "diff", "d@1.0.0", "d@1.0.1", "--json").stdout)
    ann = out["annotations"]
    changes = [c for cat in ("moved", "relabeled", "added", "removed", "attributes_changed") for c in ann[cat]]
    assert changes and {c["kind"] for c in changes} == {stored}
    assert ann["unit"] == noun and ann["by_kind"] == {stored: len(changes)}
    assert f"{len(changes)} {nouns} changed in " in out["summary"]
    human = lv(sqlite_vault, "dataset", "diff", "d@1.0.0", "d@1.0.1").stdout
    assert f"{len(changes)} {nouns} changed in " in human
    assert f"\n{nouns}: {len(changes)} changed" in human
    if noun != "box":
        assert "box" not in human.replace("bbox", "")  # not the detection path's word anywhere
    log = json.loads(lv(sqlite_vault, "dataset", "log", "d", "--json").stdout)
    changelog = next(v for v in log if v["version"] == "1.0.1")["changelog"]
    assert changelog["unit"] == noun
    assert any(noun in r["reason"] for r in changelog["reasons"])


def test_semantic_masks_diff_says_masks(sqlite_vault, tmp_path):
    """The masks importer's class regions: repainting one class's pixels is a mask change."""
    import numpy as np
    from PIL import Image

    src = tmp_path / "seg"
    shutil.copytree(SAMPLES / "common_semantic_segmentation_dataset" / "dataset", src)
    sqlite_vault.snapshot("seg", src, format="masks", version="1.0.0")
    mask_path = src / "masks" / "0001.png"
    pixels = np.array(Image.open(mask_path).convert("RGB"))
    colours = [tuple(c) for c in np.unique(pixels.reshape(-1, 3), axis=0) if tuple(c) != (0, 0, 0)]
    assert colours, "the sample has a non-background class"
    hit = (pixels == np.array(colours[0], dtype=pixels.dtype)).all(axis=-1)
    pixels[hit] = (0, 0, 0)  # that class's region erased (painted background)
    Image.fromarray(pixels).save(mask_path)
    sqlite_vault.snapshot("seg", src, format="masks", bump="auto")
    out = json.loads(lv(sqlite_vault, "dataset", "diff", "seg@1.0.0", "seg@1.0.1", "--json").stdout)
    assert out["annotations"]["unit"] == "mask"
    assert {c["kind"] for c in out["annotations"]["removed"]} == {"mask"}
    assert "1 mask changed in 1 image (1 removed)" in out["summary"]
    human = lv(sqlite_vault, "dataset", "diff", "seg@1.0.0", "seg@1.0.1").stdout
    assert "masks: 1 changed" in human and "box" not in human.replace("bbox", "")


def test_mixed_kinds_are_annotations_each_named(sqlite_vault, tmp_path):
    """Boxes and masks changed together: "annotations", and each line says which."""
    a = _coco(tmp_path / "a", "mask", False)
    sqlite_vault.snapshot("d", a, format="coco", annotations=a / "annotations.json", version="1.0.0")
    b = _coco(tmp_path / "b", "mask", True)
    doc = json.loads((b / "annotations.json").read_text())
    doc["annotations"].append({"id": 9, "image_id": 2, "category_id": 1, "bbox": [5, 5, 20, 20], "iscrowd": 0})
    (b / "annotations.json").write_text(json.dumps(doc))
    sqlite_vault.snapshot("d", b, format="coco", annotations=b / "annotations.json", version="1.1.0")
    out = json.loads(lv(sqlite_vault, "dataset", "diff", "d@1.0.0", "d@1.1.0", "--json").stdout)
    assert out["annotations"]["unit"] == "annotation"
    assert out["annotations"]["by_kind"] == {"bbox": 1, "rle": 2}
    human = lv(sqlite_vault, "dataset", "diff", "d@1.0.0", "d@1.1.0").stdout
    assert "annotations: 3 changed in 2 image(s)" in human and "(1 box, 2 masks)" in human
    assert "+ added      box RBC" in human and "- removed    mask RBC" in human
