"""Class lists given by the user: ids are kept as given, gaps included, in every format that
takes ``--classes``; labelme's ``__ignore__`` is a region to ignore, never a class."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lensvault.annotations import load
from lensvault.annotations._common import read_class_list

from .conftest import BCCD, write_image

GAPPED = "names:\n  0: Platelets\n  5: RBC\n  9: WBC\n"


def _classes(tmp_path: Path, text: str, name: str = "classes.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _labelme(root: Path, shapes_by_image: dict[str, list[tuple[str, list]]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for stem, shapes in shapes_by_image.items():
        write_image(root / f"{stem}.png", 40, 30)
        (root / f"{stem}.json").write_text(json.dumps({
            "version": "5.2.1", "flags": {}, "imagePath": f"{stem}.png", "imageData": None,
            "imageHeight": 30, "imageWidth": 40,
            "shapes": [{"label": label, "points": points, "shape_type": "rectangle", "group_id": None,
                        "flags": {}} for label, points in shapes]}))
    return root


def _masks(root: Path, values: list[int]) -> Path:
    """images/ + masks/ of greyscale masks holding class ids ``values`` (one region each)."""
    for n, value in enumerate(values):
        write_image(root / "images" / f"m{n}.png", 16, 8)
        mask = np.zeros((8, 16), np.uint8)
        mask[2:6, 3:9] = value
        (root / "masks").mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask, mode="L").save(root / "masks" / f"m{n}.png")
    return root


def _class_of_each(aset) -> list[tuple[int, str]]:
    names = dict(zip(aset.classes.ids, aset.classes.names))
    return sorted({(c, names[c]) for c in aset.annotations.column("class_id").to_pylist()})


def test_gapped_ids_are_kept_for_voc(tmp_path):
    aset = load(BCCD, format="voc", classes=_classes(tmp_path, GAPPED))
    assert (aset.classes.ids, aset.classes.names) == ((0, 5, 9), ("Platelets", "RBC", "WBC"))
    assert _class_of_each(aset) == [(0, "Platelets"), (5, "RBC"), (9, "WBC")]


def test_gapped_ids_are_kept_for_labelme_and_unknown_names_come_after_the_highest(tmp_path):
    root = _labelme(tmp_path / "lm", {"a": [("RBC", [[1, 1], [9, 9]]), ("Basophil", [[2, 2], [8, 8]])],
                                      "b": [("WBC", [[3, 3], [20, 20]])]})
    aset = load(root, format="labelme", classes=_classes(tmp_path, GAPPED))
    assert (aset.classes.ids, aset.classes.names) == ((0, 5, 9, 10), ("Platelets", "RBC", "WBC", "Basophil"))
    assert _class_of_each(aset) == [(5, "RBC"), (9, "WBC"), (10, "Basophil")]
    unknown = [f for f in aset.findings if f.code == "unknown-class"]
    assert len(unknown) == 1 and "given id 10" in unknown[0].message


def test_gapped_ids_are_kept_for_masks_whose_pixels_hold_them(tmp_path):
    root = _masks(tmp_path / "seg", [5, 9])
    aset = load(root, format="masks", classes=_classes(tmp_path, "names: {0: background, 5: RBC, 9: WBC}\n"))
    assert (aset.classes.ids, aset.classes.names) == ((0, 5, 9), ("background", "RBC", "WBC"))
    assert _class_of_each(aset) == [(5, "RBC"), (9, "WBC")]  # background (0) is not an object


def test_gapped_ids_are_kept_for_yolo_label_lines(tmp_path):
    root = tmp_path / "yolo"
    write_image(root / "images" / "a.png", 40, 30)
    (root / "labels").mkdir()
    (root / "labels" / "a.txt").write_text("5 0.5 0.5 0.2 0.2\n9 0.3 0.3 0.1 0.1\n")
    aset = load(root, format="yolo", classes=_classes(tmp_path, GAPPED))
    assert _class_of_each(aset) == [(5, "RBC"), (9, "WBC")]
    assert not [f for f in aset.findings if f.code == "unknown-class"]


@pytest.mark.parametrize(("text", "name", "expected"), [
    ("a\nb\n", "c.txt", ([0, 1], ["a", "b"])),
    ("[a, b]\n", "c.yaml", ([0, 1], ["a", "b"])),
    ('{"3": "a", "7": "b"}', "c.json", ([3, 7], ["a", "b"])),
    ("__ignore__\n_background_\ncat\n", "labels.txt", ([0, 1], ["_background_", "cat"])),  # labelme's labels.txt
    ("names: {-1: __ignore__, 0: _background_, 4: cat}\n", "c.yaml", ([0, 4], ["_background_", "cat"])),
])
def test_read_class_list(tmp_path, text, name, expected):
    assert read_class_list(_classes(tmp_path, text, name)) == expected


def test_labelme_ignore_shapes_are_regions_not_objects(tmp_path):
    """labelme2voc paints __ignore__ shapes as 255 (ignore) in the class masks: neither an
    annotation nor a class here, said in the import's description."""
    root = _labelme(tmp_path / "lm", {"a": [("cat", [[1, 1], [9, 9]]), ("__ignore__", [[10, 10], [30, 20]])],
                                      "b": [("__ignore__", [[0, 0], [5, 5]])]})
    aset = load(root, format="labelme")
    assert aset.classes.names == ("cat",)
    assert aset.annotations.num_rows == 1
    assert "2 __ignore__ shapes not imported" in aset.description
    assert aset.images.num_rows == 2  # b keeps its image, with no annotation

    # With labelme's own labels.txt as --classes, ids are labelme2voc's: _background_ 0, cat 1 —
    # the ids its class masks hold, so the JSON and the masks import alike.
    labels = _classes(tmp_path, "__ignore__\n_background_\ncat\n", "labels.txt")
    aset = load(root, format="labelme", classes=labels)
    assert (aset.classes.ids, aset.classes.names) == ((0, 1), ("_background_", "cat"))
    assert _class_of_each(aset) == [(1, "cat")]
    masks = _masks(tmp_path / "voc", [1])
    (masks / "class_names.txt").write_text("_background_\ncat\n")
    assert load(masks, format="masks").classes == aset.classes
