from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest

from lensvault.annotations import detect, export, load

from .conftest import SAMPLES


def _mask_png(h: int, w: int) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ones((h, w), dtype=np.uint8) * 255).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


@pytest.fixture
def labelme_root(tmp_path, make_image):
    make_image(tmp_path / "shots" / "a.jpg", 40, 30)
    shapes = [
        {"label": "car", "points": [[1, 1], [10, 1], [10, 8]], "shape_type": "polygon", "group_id": 3,
         "flags": {"parked": True}},
        {"label": "car", "points": [[12, 20], [2, 10]], "shape_type": "rectangle"},
        {"label": "wheel", "points": [[20, 15], [23, 15]], "shape_type": "circle"},
        {"label": "lane", "points": [[0, 29], [39, 29]], "shape_type": "line"},
        {"label": "lane", "points": [[0, 0], [5, 5], [9, 3]], "shape_type": "linestrip"},
        {"label": "light", "points": [[30, 4]], "shape_type": "point"},
        {"label": "sky", "points": [[0, 0], [3, 1]], "shape_type": "mask", "mask": _mask_png(2, 4)},
    ]
    doc = {"version": "5.5.0", "flags": {"night": True}, "shapes": shapes, "imagePath": "a.jpg",
           "imageData": None, "imageHeight": 30, "imageWidth": 40}
    (tmp_path / "shots" / "a.json").write_text(json.dumps(doc))
    return tmp_path


def test_every_labelme_shape_type(labelme_root):
    assert detect(labelme_root).format == "labelme"
    aset = load(labelme_root)
    assert aset.classes.names == ("car", "lane", "light", "sky", "wheel")
    assert aset.images.to_pylist()[0]["tags"] == '{"night":true}'
    rows = aset.annotations.to_pylist()
    kinds = [r["kind"] for r in rows]
    assert kinds == ["polygon", "bbox", "polygon", "polygon", "polygon", "keypoints", "mask"]
    poly, rect, circle, line, _strip, point, mask = rows
    assert json.loads(poly["attributes"]) == {"group_id": 3, "parked": True}
    assert (rect["x"], rect["y"], rect["w"], rect["h"]) == (2, 10, 10, 10)
    assert (circle["x"], circle["w"]) == (17, 6) and len(circle["polygon"][0]) == 128
    assert json.loads(circle["attributes"])["radius"] == 3
    assert json.loads(line["attributes"]) == {"shape_type": "line"}
    assert point["keypoints"] == [30, 4, 2]
    assert (mask["x"], mask["y"], mask["w"], mask["h"]) == (0, 0, 4, 2)
    # a horizontal line and a point have no area, and that is not a finding
    assert aset.findings == []


def test_labelme_with_a_classes_file_and_export_to_coco(labelme_root, tmp_path):
    classes = tmp_path / "classes.txt"
    classes.write_text("wheel\ncar\nlane\nlight\nsky\n")
    aset = load(labelme_root, classes=classes)
    assert aset.classes.names == ("wheel", "car", "lane", "light", "sky")
    dest = export(aset, {"shots/a.jpg": labelme_root / "shots/a.jpg"}, tmp_path / "coco", format="coco")
    again = load(dest)
    assert again.classes == aset.classes
    assert again.annotations.column("x").to_pylist() == aset.annotations.column("x").to_pylist()


# -- export: the inverse of the import ---------------------------------------------------------

_SAME = ("kind", "x", "y", "w", "h", "polygon", "rle", "keypoints", "attributes")


def test_labelme_export_reads_back_as_it_was(labelme_root, tmp_path):
    """Every shape type, shape flags, group ids and file flags: export, import, the same rows."""
    aset = load(labelme_root)
    dest = export(aset, {"shots/a.jpg": labelme_root / "shots/a.jpg"}, tmp_path / "out", format="labelme")
    assert (dest / "shots/a.jpg").is_file() and (dest / "shots/a.json").is_file()
    doc = json.loads((dest / "shots/a.json").read_text())
    assert doc["imagePath"] == "a.jpg" and doc["imageData"] is None and doc["flags"] == {"night": True}
    assert [s["shape_type"] for s in doc["shapes"]] == ["polygon", "rectangle", "circle", "line", "linestrip",
                                                        "point", "mask"]
    again = load(dest, format="labelme", classes=dest / "classes.json")
    assert again.classes == aset.classes
    assert again.images.to_pylist()[0]["tags"] == aset.images.to_pylist()[0]["tags"]
    got, want = again.annotations.to_pylist(), aset.annotations.to_pylist()
    assert len(got) == len(want)
    for a, b in zip(want, got):
        assert {k: b[k] for k in _SAME} == {k: a[k] for k in _SAME}, a["index"]


def test_labelme_export_of_coco_polygons_masks_keypoints_and_crowds(tmp_path):
    """From another format: boxes, polygons, RLE (a crowd) and keypoints come back as shapes of the
    same class, place and pixels; the crowd flag rides along as a shape flag."""
    from pycocotools import mask as mask_utils

    def pixels(rle: str):
        r = json.loads(rle)
        return mask_utils.decode({"counts": r["counts"].encode() if isinstance(r["counts"], str) else r["counts"],
                                  "size": r["size"]})

    src = SAMPLES / "coco_dataset" / "coco"
    aset = load(src)
    files = {p: src / p for p in aset.images.column("path").to_pylist() if (src / p).is_file()}
    dest = export(aset, files, tmp_path / "out", format="labelme")
    again = load(dest, format="labelme", classes=dest / "classes.json")
    assert again.classes == aset.classes
    want = sorted(aset.annotations.to_pylist(), key=lambda r: (r["image"], r["index"]))
    got = sorted(again.annotations.to_pylist(), key=lambda r: (r["image"], r["index"]))
    assert len(got) == len(want) and {r["kind"] for r in want} >= {"polygon", "rle"}
    for a, b in zip(want, got):
        assert (b["image"], b["class_id"]) == (a["image"], a["class_id"])
        if a["rle"]:  # the same pixels, as a labelme mask
            assert b["kind"] == "mask"
            assert (pixels(b["rle"]) == pixels(a["rle"])).all()
            assert json.loads(b["attributes"]).get("iscrowd") is (True if a["iscrowd"] else None)
        elif a["polygon"]:
            assert b["polygon"] == a["polygon"]
        else:
            assert (b["x"], b["y"], b["w"], b["h"]) == (a["x"], a["y"], a["w"], a["h"])


def test_labelme_export_writes_image_labels_as_flags(tmp_path, make_image):
    """Image labels are the file's flags (true), read back with --label-key flags."""
    for path in ("cat/1.jpg", "dog/2.jpg", "dog/3.jpg"):
        make_image(tmp_path / "src" / path, 8, 6)
    aset = load(tmp_path / "src", format="imagefolder")
    files = {p: tmp_path / "src" / p for p in aset.images.column("path").to_pylist()}
    dest = export(aset, files, tmp_path / "out", format="labelme")
    assert json.loads((dest / "dog/2.json").read_text())["flags"] == {"dog": True}
    again = load(dest, format="labelme", classes=dest / "classes.json", label_key="flags")
    labels = {r["image"]: again.classes.name_of(r["class_id"]) for r in again.annotations.to_pylist()}
    assert labels == {"cat/1.jpg": "cat", "dog/2.jpg": "dog", "dog/3.jpg": "dog"}
