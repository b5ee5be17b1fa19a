"""Malformed input raises a located AnnotationError (what, where, fix); findings and strict."""

from __future__ import annotations

import json
import shutil

import pytest

from lensvault.annotations import load
from lensvault.errors import AnnotationError, InputError

from .conftest import BCCD, SAMPLES


def _raises(root, *, where: str, what: str, **kw) -> AnnotationError:
    with pytest.raises(AnnotationError) as info:
        load(root, **kw)
    err = info.value
    assert isinstance(err, InputError) and err.exit_code == 6
    assert what in err.what, err.what
    assert where in err.where, err.where
    assert err.fix, "every error says how to fix it"
    assert err.details["findings"][0]["level"] == "error"
    assert where in str(err) and err.fix in str(err)
    return err


def test_bad_json(copy_sample):
    root = copy_sample("coco_dataset/coco_instances")
    path = root / "annotations" / "instances_train.json"
    path.write_text(path.read_text().replace('"name":"a",', '"name":"a"', 1))
    _raises(root, where="annotations/instances_train.json, line 21 column 9", what="invalid JSON")


def test_bad_xml(copy_sample):
    root = copy_sample("voc_dataset/voc_dataset3")
    path = root / "Annotations" / "2007_000001.xml"
    path.write_text(path.read_text().replace("</size>", "", 1))
    _raises(root, where="Annotations/2007_000001.xml, line", what="invalid XML")


def test_bad_yaml(copy_sample):
    root = copy_sample("roboflow_dataset/yolo")
    (root / "data.yaml").write_text("train: ../train/images\nnames: [a, b\nnc: 2\n")
    _raises(root, where="data.yaml, line 3", what="invalid YAML", format="yolo")


def test_coco_annotation_for_missing_image_id(copy_sample):
    root = copy_sample("coco_dataset/coco_instances")
    path = root / "annotations" / "instances_val.json"
    doc = json.loads(path.read_text())
    doc["annotations"][1]["image_id"] = 999
    path.write_text(json.dumps(doc))
    _raises(root, where="annotations/instances_val.json, annotation id 2", what="image id 999")


def test_yolo_line_with_wrong_number_of_values(copy_sample):
    root = copy_sample("yolo_dataset/labels")
    label = root / "labels" / "val" / "1.txt"
    label.write_text("2 0.1 0.2 0.3 0.4\n4 0.5 0.5 0.1\n")
    _raises(root, where="labels/val/1.txt, line 2", what="has 4 values")


def test_yolo_non_numeric_value(copy_sample):
    root = copy_sample("yolo_dataset/labels")
    (root / "labels" / "train" / "1.txt").write_text("cat 0.1 0.2 0.3 0.4\n")
    _raises(root, where="labels/train/1.txt, line 1", what="non-numeric")


def test_voc_box_with_xmax_below_xmin(copy_sample):
    root = copy_sample("voc_dataset/voc_dataset1")
    path = root / "Annotations" / "2007_000001.xml"
    path.write_text(path.read_text().replace("<xmax>6</xmax>", "<xmax>2</xmax>"))
    _raises(root, where="Annotations/2007_000001.xml, object 2", what="swapped")


def test_mask_colour_not_in_class_map(copy_sample):
    from PIL import Image

    root = copy_sample("common_semantic_segmentation_dataset/dataset")
    mask = root / "masks" / "0002.png"
    im = Image.open(mask).convert("RGB")
    im.putpixel((0, 0), (1, 2, 3))
    im.save(mask)
    _raises(root, where="masks/0002.png", what="not in the class map")


def test_unreadable_image(copy_sample):
    root = copy_sample("yolo_dataset/labels")
    (root / "images" / "val" / "1.jpg").write_bytes(b"not an image at all")
    err = _raises(root, where="images/val/1.jpg", what="no decoder can read this image")
    assert [f["code"] for f in err.details["findings"]] == ["unreadable-image"]


def test_labelme_bad_shape(tmp_path, make_image):
    make_image(tmp_path / "a.jpg")
    doc = {"version": "5.4.1", "flags": {}, "imagePath": "a.jpg", "imageWidth": 20, "imageHeight": 10,
           "shapes": [{"label": "x", "points": [[1, 1]], "shape_type": "rectangle", "flags": {}}]}
    (tmp_path / "a.json").write_text(json.dumps(doc))
    _raises(tmp_path, where="a.json, shape 0", what="needs at least 2 points")


def test_unknown_format_name_and_missing_paths(tmp_path):
    _raises(tmp_path, where=str(tmp_path), what="unknown annotation format", format="kitti")
    _raises(tmp_path, where=str(tmp_path), what="no known annotation format")
    _raises(tmp_path, where="nope.json", what="does not exist", annotations=tmp_path / "nope.json")


def test_bccd_strict_mode_raises_every_finding():
    with pytest.raises(AnnotationError) as info:
        load(BCCD, strict=True)
    err = info.value
    findings = err.details["findings"]
    assert [f["code"] for f in findings] == ["zero-area-box", "zero-area-box"]
    assert "BloodImage_00338.xml, object 13" in err.where
    assert "--strict" in err.fix


def test_strict_passes_clean_data():
    aset = load(SAMPLES / "coco_dataset/coco_instances", strict=True)
    assert aset.findings == []


def test_copy_helper_leaves_shared_data_untouched(copy_sample):
    root = copy_sample("voc_dataset/voc_dataset3")
    shutil.rmtree(root / "JPEGImages")
    assert (SAMPLES / "voc_dataset/voc_dataset3/JPEGImages/2007_000001.jpg").is_file()
