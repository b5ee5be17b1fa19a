"""Findings: every one located by file and line/object; data kept as given (never clipped)."""

from __future__ import annotations

import json

import pytest

from lensvault.annotations import load, validate
from lensvault.errors import AnnotationError

from .conftest import BCCD


def _codes(aset):
    return sorted(f.code for f in aset.findings)


def test_bccd_counts_splits_and_its_two_zero_area_boxes():
    aset = load(BCCD)
    assert aset.source_format == "voc"
    assert aset.images.num_rows == 47
    assert aset.annotations.num_rows == 898
    assert aset.classes.names == ("Platelets", "RBC", "WBC")  # sorted names → ids 0..2
    assert {k: len(v) for k, v in aset.splits.items()} == {"train": 27, "val": 10, "test": 10}
    train = set((BCCD / "BCCD/ImageSets/Main/train.txt").read_text().split())
    assert {p.rsplit("/", 1)[1][:-4] for p in aset.splits["train"]} == train
    assert [(f.code, f.file, f.location) for f in aset.findings] == [
        ("zero-area-box", "BCCD/Annotations/BloodImage_00338.xml", "object 13"),
        ("zero-area-box", "BCCD/Annotations/BloodImage_00343.xml", "object 4"),
    ]
    assert all(f.level == "warning" for f in aset.findings)
    assert "47 images" in aset.description and "898 boxes" in aset.description


def _yolo(root, make_image, lines: str, *, size=(20, 10), orientation=None, names=("a", "b")):
    make_image(root / "images" / "train" / "x.jpg", *size, orientation=orientation)
    (root / "labels" / "train").mkdir(parents=True, exist_ok=True)
    (root / "labels" / "train" / "x.txt").write_text(lines)
    (root / "data.yaml").write_text(json.dumps({"train": "images/train", "names": list(names)}))
    return root


def test_box_outside_image_is_reported_not_clipped(tmp_path, make_image):
    root = _yolo(tmp_path, make_image, "0 0.5 0.5 0.2 0.2\n1 0.95 0.5 0.2 0.2\n")
    aset = load(root)
    (f,) = aset.findings
    assert (f.code, f.file, f.location) == ("box-outside-image", "labels/train/x.txt", "line 2")
    assert aset.annotations.column("w").to_pylist()[1] == pytest.approx(4.0)  # not clipped


def test_yolo_values_outside_unit_range_and_unknown_class(tmp_path, make_image):
    root = _yolo(tmp_path, make_image, "0 0.5 0.5 0.2 0.2\n7 5 5 2 2\n")
    aset = load(root)
    by_code = {f.code: f for f in aset.findings}
    assert set(by_code) == {"yolo-value-out-of-range", "unknown-class", "box-outside-image"}
    assert all(f.location == "line 2" for f in aset.findings)
    assert "7" in by_code["unknown-class"].message


def test_exif_rotation_that_swaps_width_and_height(tmp_path, make_image):
    root = _yolo(tmp_path, make_image, "0 0.5 0.5 0.2 0.2\n", orientation=6)
    aset = load(root)
    assert aset.images.column("orientation").to_pylist() == [6]
    (f,) = aset.findings
    assert f.code == "exif-rotated" and f.file == "images/train/x.jpg" and "10x20" in f.message
    assert load(_yolo(tmp_path / "b", make_image, "0 0.5 0.5 0.2 0.2\n", orientation=3)).findings == []


def test_unannotated_and_duplicate_names_and_missing_images(tmp_path, make_image):
    root = tmp_path
    make_image(root / "a" / "1.jpg")
    make_image(root / "b" / "1.jpg")
    doc = {"images": [{"id": 1, "file_name": "a/1.jpg", "width": 20, "height": 10},
                      {"id": 2, "file_name": "b/1.jpg", "width": 20, "height": 10},
                      {"id": 3, "file_name": "c/gone.jpg", "width": 20, "height": 10}],
           "categories": [{"id": 1, "name": "x"}],
           "annotations": [{"id": 10, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5]},
                           {"id": 11, "image_id": 3, "category_id": 1, "bbox": [0, 0, 0, 5]}]}
    (root / "coco.json").write_text(json.dumps(doc))
    aset = load(root)
    found = {(f.code, f.location) for f in aset.findings}
    assert found == {("missing-image", "image id 3"), ("unannotated-image", "image"),
                     ("duplicate-file-name", "image"), ("zero-area-box", "annotation id 11")}
    assert aset.images.num_rows == 3  # kept, counted
    with pytest.raises(AnnotationError) as e:
        load(root, strict=True)
    assert len(e.value.details["findings"]) == 4


def test_validate_without_origins_locates_by_image_and_index(tmp_path, make_image):
    root = _yolo(tmp_path, make_image, "0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0 0.2\n")
    aset = load(root)
    (f,) = validate(aset)
    assert (f.code, f.file, f.location) == ("zero-area-box", "images/train/x.jpg", "annotation 1")
