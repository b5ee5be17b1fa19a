"""Semantic masks (issue 10 item 11): background is not an object, labelme's class_names.txt
is honoured, instance masks (SegmentationObject/) are imported."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lensvault.annotations import detect, export, load
from lensvault.annotations.importers.masks import voc_palette

from .conftest import BCCD, SAMPLES

JPEGS = sorted((BCCD / "BCCD" / "JPEGImages").iterdir())


def _palette_png(path: Path, values: np.ndarray) -> None:
    """A palette PNG as the VOC devkit and labelme's lblsave write them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(values.astype(np.uint8), mode="P")
    im.putpalette([c for rgb in voc_palette(256) for c in rgb])
    im.save(path)


def _labelme2voc(root: Path) -> Path:
    """The layout labelme2voc.py writes: JPEGImages/, SegmentationClassPNG/, SegmentationObjectPNG/,
    visualizations, class_names.txt with _background_ first (__ignore__ pixels are 255)."""
    (root / "JPEGImages").mkdir(parents=True)
    (root / "class_names.txt").write_text("_background_\ncat\ndog\n")
    for i, src in enumerate(JPEGS[:2]):
        name = f"2011_00000{i}"
        shutil.copy(src, root / "JPEGImages" / f"{name}.jpg")
        cls = np.zeros((480, 640), dtype=np.int64)
        obj = np.zeros((480, 640), dtype=np.int64)
        cls[10:50, 10:60] = 1   # cat, instance 1
        obj[10:50, 10:60] = 1
        cls[100:140, 200:260] = 1  # another cat, instance 2
        obj[100:140, 200:260] = 2
        cls[300:320, 300:400] = 2  # dog, instance 3
        obj[300:320, 300:400] = 3
        cls[0:5, 0:5] = 255  # __ignore__
        obj[0:5, 0:5] = 255
        _palette_png(root / "SegmentationClassPNG" / f"{name}.png", cls)
        _palette_png(root / "SegmentationObjectPNG" / f"{name}.png", obj)
        np.save(root / "JPEGImages" / ".." / "SegmentationClassPNG" / f"{name}.npy", cls)
        (root / "SegmentationClassVisualization").mkdir(exist_ok=True)
        shutil.copy(src, root / "SegmentationClassVisualization" / f"{name}.jpg")
    return root


def test_labelme2voc_output_with_class_names_and_instances(tmp_path):
    root = _labelme2voc(tmp_path / "data_dataset_voc")
    found = detect(root)
    assert found.format == "masks"
    assert "SegmentationClassPNG/" in found.description and "instances in SegmentationObjectPNG/" in found.description
    aset = load(root)
    assert aset.classes.names == ("_background_", "cat", "dog")
    assert aset.images.column("path").to_pylist() == ["JPEGImages/2011_000000.jpg", "JPEGImages/2011_000001.jpg"]
    rows = aset.annotations.to_pylist()
    per_image = [(r["class_id"], json.loads(r["attributes"]).get("instance"), r["x"], r["y"], r["w"], r["h"])
                 for r in rows if r["image"] == "JPEGImages/2011_000000.jpg"]
    assert per_image == [(1, 1, 10, 10, 50, 40), (1, 2, 200, 100, 60, 40), (2, 3, 300, 300, 100, 20),
                         (0, None, 0, 0, 5, 5)]  # the __ignore__ pixels: a crowd region, not scored
    # background is not an object: class 0 only on the ignore regions, which are crowd
    assert {(r["class_id"], r["iscrowd"], r["attributes"]) for r in rows if r["class_id"] == 0} == {
        (0, True, '{"ignore":true}')}
    assert "class_names.txt" in aset.description and "background '_background_'" in aset.description


def test_background_is_not_an_object_in_voc_palette_masks(tmp_path):
    root = tmp_path / "voc"
    (root / "JPEGImages").mkdir(parents=True)
    shutil.copy(JPEGS[0], root / "JPEGImages" / "a.jpg")
    values = np.zeros((480, 640))
    values[20:40, 30:90] = 15  # person
    values[19, 30:90] = 255    # the VOC border
    _palette_png(root / "SegmentationClass" / "a.png", values)
    aset = load(root, format="masks")
    assert [(aset.classes.name_of(r["class_id"]), r["w"], r["h"], r["iscrowd"]) for r in aset.annotations.to_pylist()
            ] == [("person", 60, 20, False), ("background", 60, 1, True)]  # the border: an ignore region
    # …and so nothing called background is exported as an object
    out = export(aset, {"JPEGImages/a.jpg": root / "JPEGImages" / "a.jpg"}, tmp_path / "coco", format="coco")
    doc = json.loads(next((out / "annotations").glob("*.json")).read_text())
    names = {c["id"]: c["name"] for c in doc["categories"]}
    assert [names[a["category_id"]] for a in doc["annotations"]] == ["person"]


def test_dataset_meta_background_label_is_honoured(copy_sample):
    root = copy_sample("common_semantic_segmentation_dataset/dataset")
    mask = root / "masks" / "0001.png"
    im = Image.open(mask).convert("RGB")
    im.putpixel((1, 0), (0, 0, 0))  # "Void", the background_label
    im.save(mask)
    aset = load(root)
    assert 0 not in aset.annotations.column("class_id").to_pylist()
    meta = json.loads((root / "dataset_meta.json").read_text())
    del meta["background_label"]
    (root / "dataset_meta.json").write_text(json.dumps(meta))
    # without background_label, "Void" is an ordinary class
    assert 0 in load(root).annotations.column("class_id").to_pylist()


def test_voc_sample_segmentation_object_gives_instances():
    aset = load(SAMPLES / "voc_dataset/voc_dataset1", format="masks")
    (row,) = aset.annotations.to_pylist()
    assert aset.classes.name_of(row["class_id"]) == "bicycle"
    assert json.loads(row["attributes"]) == {"instance": 1}


def test_class_pixels_no_instance_covers_are_kept_as_a_class_region(tmp_path):
    root = _labelme2voc(tmp_path / "ds")
    obj = np.array(Image.open(root / "SegmentationObjectPNG" / "2011_000000.png"))
    obj[obj == 3] = 0  # the dog has no instance
    _palette_png(root / "SegmentationObjectPNG" / "2011_000000.png", obj)
    rows = [r for r in load(root).annotations.to_pylist() if r["image"] == "JPEGImages/2011_000000.jpg"]
    assert [(r["class_id"], json.loads(r["attributes"]).get("instance")) for r in rows] == [
        (1, 1), (1, 2), (2, None), (0, None)]  # the last: the __ignore__ pixels, a crowd region


@pytest.mark.parametrize("meta,what", [
    ({"label_map": ["a", "b"]}, "label_map is not an object"),
    ({"label_map": {"0": "a", "x": "b"}}, "not an integer id"),
    ({"label_map": {"0": 5}}, "not a name"),
    ({"label_map": {"0": "a"}, "segmentation_colors": [[0, 0]]}, "three values"),
    ({"label_map": {"0": "a"}, "segmentation_colors": [[0, 0, 300]]}, "three values"),
    ({"label_map": {"0": "a"}, "segmentation_colors": [["r", 0, 0]]}, "not r,g,b"),
    ({"label_map": {"0": "a"}, "background_label": "7"}, "background_label"),
    ([1, 2, 3], "not a JSON object"),
])
def test_malformed_dataset_meta_is_a_located_error(copy_sample, meta, what):
    from lensvault.errors import AnnotationError

    root = copy_sample("common_semantic_segmentation_dataset/dataset")
    (root / "dataset_meta.json").write_text(json.dumps(meta))
    with pytest.raises(AnnotationError) as info:
        load(root, format="masks")
    assert what in info.value.what and info.value.where.startswith("dataset_meta.json")
