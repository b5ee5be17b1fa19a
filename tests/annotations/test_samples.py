"""Every sample in format-samples that is one of our formats imports, by name and by auto."""

from __future__ import annotations

import pytest

from lensvault.annotations import detect, load
from lensvault.errors import AnnotationError

from .conftest import BCCD, SAMPLES

# sample → (format, images, annotations, classes, splits)
EXPECTED = {
    "coco_dataset/coco": ("coco", 2, 3, 3, {"train": 1, "val": 1}),
    "coco_dataset/coco_image_info": ("coco", 2, 0, 0, {"train": 1, "val": 1}),
    "coco_dataset/coco_instances": ("coco", 2, 3, 3, {"train": 1, "val": 1}),
    "coco_dataset/coco_person_keypoints": ("coco", 2, 3, 2, {"train": 1, "val": 1}),
    "coco_dataset/coco_roboflow": ("coco", 2, 3, 3, {"train": 1, "val": 1}),
    "coco_dataset/coco_stuff": ("coco", 2, 2, 2, {"train": 1, "val": 1}),
    "coco_dataset/mmdet_coco": ("coco", 2, 3, 3, {"train": 1, "val": 1}),
    "roboflow_dataset/coco": ("coco", 3, 4, 2, {"train": 2, "val": 1}),
    "roboflow_dataset/voc": ("voc", 3, 4, 2, {"train": 2, "val": 1}),
    "roboflow_dataset/yolo": ("yolo", 3, 4, 2, {"train": 2, "val": 1}),
    "voc_dataset/voc_dataset1": ("voc", 2, 2, 2, {"train": 1, "test": 1}),
    "voc_dataset/voc_dataset2": ("voc", 5, 4, 22, {"trainval": 5}),
    "voc_dataset/voc_dataset3": ("voc", 1, 1, 1, {"train": 1}),
    "yolo_dataset/annotations": ("yolo", 1, 2, 10, {}),
    "yolo_dataset/labels": ("yolo", 2, 4, 10, {"train": 1, "val": 1}),
    "yolo_dataset/strict": ("yolo", 1, 2, 10, {"train": 1}),
    "common_semantic_segmentation_dataset/dataset": ("masks", 2, 4, 6, {}),
    "common_semantic_segmentation_dataset/non_standard_dataset": ("masks", 2, 5, 8, {}),
}

UNSUPPORTED = {
    "coco_dataset/coco_captions": "COCO captions",
    "coco_dataset/coco_labels": "COCO image-level labels",
    "coco_dataset/coco_panoptic": "COCO panoptic",
    "roboflow_dataset/createml": "CreateML",
    "roboflow_dataset/multiclass": "classification CSV",
    "roboflow_dataset/tfrecord": "TFRecord",
    "roboflow_dataset/yolo_obb": "oriented boxes",
    "labelme_dataset": "MIT LabelMe XML",
}


def _splits(aset):
    return {k: len(v) for k, v in aset.splits.items()}


@pytest.mark.parametrize("sample", sorted(EXPECTED))
def test_sample_imports_with_its_format_and_by_auto_detection(sample):
    fmt, n_images, n_anns, n_classes, splits = EXPECTED[sample]
    named = load(SAMPLES / sample, format=fmt)
    auto = load(SAMPLES / sample)
    assert auto.source_format == fmt
    assert detect(SAMPLES / sample).format == fmt
    for aset in (named, auto):
        assert aset.images.num_rows == n_images
        assert aset.annotations.num_rows == n_anns
        assert len(aset.classes) == n_classes
        assert _splits(aset) == splits
        assert aset.description.lower().startswith(
            {"coco": "coco", "voc": "pascal voc", "yolo": "yolo", "masks": "segmentation"}[fmt])
    assert named.annotations.equals(auto.annotations)
    assert named.images.equals(auto.images)


@pytest.mark.parametrize("sample", sorted(UNSUPPORTED))
def test_known_but_unsupported_formats_are_named_in_the_error(sample):
    with pytest.raises(AnnotationError) as e:
        load(SAMPLES / sample)
    assert UNSUPPORTED[sample].lower() in e.value.what.lower()
    assert e.value.where and e.value.fix
    assert e.value.details["findings"][0]["code"] == "unsupported-format"


def test_coco_keeps_non_contiguous_ids_polygons_rle_crowd_and_attributes():
    aset = load(SAMPLES / "coco_dataset/coco_instances")
    assert aset.classes.ids == (1, 2, 4) and aset.classes.names == ("a", "b", "c")
    rows = aset.annotations.to_pylist()
    poly, crowd = rows[1], rows[2]
    assert poly["kind"] == "polygon" and poly["polygon"] == [[0.0, 0.0, 1.0, 0.0, 1.0, 2.0, 0.0, 2.0]]
    assert poly["attributes"] == '{"x":1,"y":"hello"}'
    # Uncompressed counts [0, 20, 30] become compressed RLE, decodable by pycocotools.
    import json

    from pycocotools import mask as mask_utils
    rle = json.loads(crowd["rle"])
    assert crowd["kind"] == "rle" and crowd["iscrowd"] is True
    assert isinstance(rle["counts"], str) and rle["size"] == [10, 5]
    assert mask_utils.area({"size": rle["size"], "counts": rle["counts"].encode()}) == 20
    assert aset.images.column("path").to_pylist() == ["images/train/a.jpg", "images/val/b.jpg"]


def test_coco_keypoints_and_skeleton_are_kept():
    aset = load(SAMPLES / "coco_dataset/coco_person_keypoints")
    assert aset.classes.keypoints[1]["skeleton"] == [[0, 1], [1, 2]]
    rows = aset.annotations.to_pylist()
    assert rows[0]["kind"] == "keypoints"
    assert rows[0]["keypoints"] == [0, 0, 0, 0, 2, 1, 4, 1, 2]
    assert rows[1]["kind"] == "polygon" and rows[1]["keypoints"] == [1, 2, 2, 3, 4, 2, 2, 3, 2]


def test_yolo_sizes_come_from_image_headers_and_boxes_are_absolute():
    aset = load(SAMPLES / "yolo_dataset/labels")
    assert aset.images.column("width").to_pylist() == [15, 15]
    row = aset.annotations.to_pylist()[1]
    # 4 0.266667 0.450000 0.133333 0.300000 on a 15x10 image
    assert row["class_id"] == 4
    assert row["x"] == pytest.approx(3.0, abs=1e-4) and row["w"] == pytest.approx(2.0, abs=1e-4)
    assert row["y"] == pytest.approx(3.0) and row["h"] == pytest.approx(3.0)
    # the same file name in images/train and images/val is worth a warning
    assert [f.code for f in aset.findings] == ["duplicate-file-name"]


def test_voc_sample_flags_actions_parts_and_labelmap_order():
    aset = load(SAMPLES / "voc_dataset/voc_dataset1")
    cat, person = aset.annotations.to_pylist()
    assert (cat["x"], cat["y"], cat["w"], cat["h"]) == (0.0, 1.0, 2.0, 2.0)  # xmin=1..xmax=3, 1-based
    assert cat["truncated"] and not cat["difficult"] and not cat["occluded"]
    assert '"parts"' in person["attributes"] and '"phoning":true' in person["attributes"]
    # JPEGImages/2007_000002.jpg has no XML: kept, reported
    assert [f.code for f in aset.findings] == ["unannotated-image"]
    ordered = load(SAMPLES / "voc_dataset/voc_dataset2")
    assert ordered.classes.names[:3] == ("background", "aeroplane", "bicycle")  # labelmap.txt order
    assert {f.code for f in ordered.findings} == {"missing-image", "unannotated-image"}


def test_masks_become_one_rle_annotation_per_class_present():
    aset = load(SAMPLES / "common_semantic_segmentation_dataset/dataset")
    rows = aset.annotations.to_pylist()
    assert [(r["image"], r["class_id"]) for r in rows] == [
        ("images/0001.png", 3), ("images/0001.png", 5), ("images/0002.png", 1), ("images/0002.png", 4)]
    assert all(r["kind"] == "mask" for r in rows)
    assert (rows[0]["x"], rows[0]["w"], rows[1]["x"], rows[1]["w"]) == (0.0, 5.0, 2.0, 1.0)
    # non-standard names (image_0001 / gt_0001) pair up too
    other = load(SAMPLES / "common_semantic_segmentation_dataset/non_standard_dataset")
    assert set(other.annotations.column("image").to_pylist()) == {"images/image_0001.png", "images/image_0002.png"}


def test_voc_segmentation_class_pngs_with_the_voc_palette():
    aset = load(SAMPLES / "voc_dataset/voc_dataset1", format="masks")
    (row,) = aset.annotations.to_pylist()
    assert aset.classes.name_of(row["class_id"]) == "bicycle"


def test_detect_describes_what_it_found():
    d = detect(BCCD)
    assert d.format == "voc"
    assert "47 XML files" in d.description and "train" in d.description
    assert detect(SAMPLES / "coco_dataset/coco").description == (
        "COCO: annotations/instances_train.json, annotations/instances_val.json")
