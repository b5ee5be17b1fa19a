from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest

from lensvault.annotations import detect, export, load


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
