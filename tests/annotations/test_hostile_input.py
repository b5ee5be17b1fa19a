"""Hostile and malformed input to the VOC, labelme and mask importers (issue 11 items 8 and 10):
every field type-checked, a located error for each, bounded work, nothing read from outside."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lensvault.annotations import load
from lensvault.errors import AnnotationError

from .conftest import BCCD

XML = (BCCD / "BCCD" / "Annotations" / "BloodImage_00000.xml").read_text()
JPEG = BCCD / "BCCD" / "JPEGImages" / "BloodImage_00000.jpg"


def _raises(root: Path, where: str, what: str = "", **kw) -> AnnotationError:
    with pytest.raises(AnnotationError) as info:
        load(root, **kw)
    err = info.value
    assert err.where and where in err.where, err.where
    assert what in err.what, err.what
    assert err.fix
    return err


def _voc(tmp_path: Path, xml: str) -> Path:
    root = tmp_path / "voc"
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    shutil.copy(JPEG, root / "JPEGImages" / "BloodImage_00000.jpg")
    (root / "Annotations" / "BloodImage_00000.xml").write_text(xml)
    return root


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-Infinity", "1e999"])
def test_voc_non_finite_coordinates(tmp_path, value):
    root = _voc(tmp_path, XML.replace("<xmin>260</xmin>", f"<xmin>{value}</xmin>", 1))
    _raises(root, "Annotations/BloodImage_00000.xml, object 1", "not a finite number", format="voc")


@pytest.mark.parametrize("value,what", [("abc", "not a number"), ("inf", "not a pixel count"),
                                        ("-640", "not a pixel count"), ("640.5", "not a pixel count"),
                                        ("1e12", "not a pixel count")])
def test_voc_sizes_that_are_not_pixel_counts(tmp_path, value, what):
    root = _voc(tmp_path, XML.replace("<width>640</width>", f"<width>{value}</width>"))
    _raises(root, "Annotations/BloodImage_00000.xml, size", what, format="voc")


def test_voc_part_box_that_is_not_a_number(tmp_path):
    xml = XML.replace("</bndbox>", "</bndbox><part><name>head</name><bndbox><xmin>a</xmin><ymin>1</ymin>"
                                   "<xmax>2</xmax><ymax>3</ymax></bndbox></part>", 1)
    _raises(_voc(tmp_path, xml), "object 1 part 1", "not a number", format="voc")


def test_voc_entity_expansion_and_external_entities_are_refused(tmp_path):
    lol = ('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY a "aaaaaaaaaa">'
           + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9))
           + ']><annotation><filename>&j;</filename></annotation>')
    _raises(_voc(tmp_path / "lol", lol), "Annotations/BloodImage_00000.xml, line", "invalid XML", format="voc")
    xxe = ('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           "<annotation><filename>&x;</filename></annotation>")
    _raises(_voc(tmp_path / "xxe", xxe), "Annotations/BloodImage_00000.xml, line", "invalid XML", format="voc")


def test_voc_huge_file_is_refused_without_reading_it(tmp_path):
    root = _voc(tmp_path, XML)
    big = root / "Annotations" / "BloodImage_00000.xml"
    with open(big, "r+b") as f:
        f.truncate(65 * 1024 * 1024 + 1)  # sparse: reading it would take the whole size
    _raises(root, "Annotations/BloodImage_00000.xml", "larger than 64 MB", format="voc")


def test_voc_xml_symlinked_from_outside_is_refused(tmp_path):
    root = _voc(tmp_path, XML)
    outside = tmp_path / "outside.xml"
    outside.write_text(XML.replace("BloodImage_00000", "BloodImage_00001"))
    (root / "Annotations" / "BloodImage_00001.xml").symlink_to(outside)
    err = _raises(root, "Annotations/BloodImage_00001.xml", "outside the dataset folder")
    assert err.details["findings"][0]["code"] == "outside-root"


# -- labelme ------------------------------------------------------------------------------------


def _labelme(tmp_path: Path, **changes) -> Path:
    root = tmp_path / "lm"
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(JPEG, root / "a.jpg")
    doc = {"version": "5.4.1", "flags": {}, "imagePath": "a.jpg", "imageData": None, "imageWidth": 640,
           "imageHeight": 480, "shapes": [{"label": "cell", "points": [[1, 1], [20, 20]], "shape_type": "rectangle",
                                           "flags": {}, "group_id": None}]}
    for key, value in changes.items():
        if key.startswith("shape_"):
            doc["shapes"][0][key[6:]] = value
        else:
            doc[key] = value
    (root / "a.json").write_text(json.dumps(doc))
    return root


@pytest.mark.parametrize("changes,where,what", [
    ({"shape_points": [[float("nan"), 1], [2, 2]]}, "a.json, shape 0 point 0", "finite numbers"),
    ({"shape_points": [["1", 1], [2, 2]]}, "a.json, shape 0 point 0", "finite numbers"),
    ({"shape_points": [[True, 1], [2, 2]]}, "a.json, shape 0 point 0", "finite numbers"),
    ({"shape_points": [[1], [2, 2]]}, "a.json, shape 0 point 0", "finite numbers"),
    ({"shape_points": "1,1,2,2"}, "a.json, shape 0", "not a list"),
    ({"shape_points": [[1e308, 1e308], [-1e308, -1e308]]}, "a.json, shape 0", "finite box"),
    ({"shape_label": 7}, "a.json, shape 0", "string \"label\""),
    ({"shape_flags": ["x"]}, "a.json, shape 0 flags", "not an object"),
    ({"shape_group_id": "3"}, "a.json, shape 0 group_id", "not an integer"),
    ({"shape_shape_type": 5}, "a.json, shape 0 shape_type", "not a string"),
    ({"imagePath": 12}, "a.json, imagePath", "not a string"),
    ({"imageWidth": "640"}, "a.json, imageWidth", "not a pixel count"),
    ({"imageHeight": -1}, "a.json, imageHeight", "not a pixel count"),
    ({"imageData": 5}, "a.json, imageData", "not a base64 string"),
    ({"flags": [1]}, "a.json, flags", "not an object"),
    ({"flags": {"night": float("nan")}}, "a.json, flags.night", "JSON cannot hold"),  # kept as image tags
    ({"shape_flags": {"score": [1.0, float("-inf")]}}, "a.json, shape 0 flags.score[1]", "JSON cannot hold"),
])
def test_labelme_fields_are_type_checked(tmp_path, changes, where, what):
    _raises(_labelme(tmp_path, **changes), where, what, format="labelme")


def test_labelme_deeply_nested_json_is_a_located_error(tmp_path):
    root = _labelme(tmp_path)
    depth = 100_000
    (root / "a.json").write_text('{"shapes": [], "imagePath": "a.jpg", "flags": ' + "[" * depth + "]" * depth + "}")
    _raises(root, "a.json", "nested too deeply", format="labelme")


def test_labelme_huge_file_is_refused_without_reading_it(tmp_path):
    root = _labelme(tmp_path)
    with open(root / "a.json", "r+b") as f:
        f.truncate(257 * 1024 * 1024)
    _raises(root, "a.json", "more than any labelme file", format="labelme")


def test_labelme_json_symlinked_from_outside_is_refused(tmp_path):
    root = _labelme(tmp_path)
    outside = tmp_path / "b.json"
    outside.write_text((root / "a.json").read_text())
    (root / "b.json").symlink_to(outside)
    err = _raises(root, "b.json", "outside the dataset folder", format="labelme")
    assert err.details["findings"][0]["code"] == "outside-root"


def test_labelme_mask_left_of_and_above_the_image_is_placed_not_wrapped(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(np.full((4, 4), 255, dtype=np.uint8)).save(buf, format="PNG")
    root = _labelme(tmp_path, shape_shape_type="mask", shape_points=[[-2, -2], [1, 1]],
                    shape_mask=base64.b64encode(buf.getvalue()).decode())
    (row,) = load(root).annotations.to_pylist()
    assert (row["x"], row["y"], row["w"], row["h"]) == (0, 0, 2, 2)


# -- masks ---------------------------------------------------------------------------------------


def _bomb_png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 4096)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("size,what", [((10_000, 10_000), "mask is 10000x10000 but its image is 5x1"),
                                       ((30_000, 30_000), "decompression bomb")])
def test_a_mask_bomb_is_refused_before_it_is_decoded(copy_sample, size, what):
    root = copy_sample("common_semantic_segmentation_dataset/dataset")
    (root / "masks" / "0001.png").write_bytes(_bomb_png(*size))
    _raises(root, "masks/0001.png", what, format="masks")


def test_a_deeply_nested_dataset_meta_is_a_located_error(copy_sample):
    root = copy_sample("common_semantic_segmentation_dataset/dataset")
    (root / "dataset_meta.json").write_text("[" * 50_000 + "]" * 50_000)
    _raises(root, "dataset_meta.json", "nested too deeply", format="masks")


def test_a_class_map_symlinked_from_outside_is_refused(copy_sample, tmp_path):
    root = copy_sample("common_semantic_segmentation_dataset/dataset")
    outside = tmp_path / "meta.json"
    shutil.move(root / "dataset_meta.json", outside)
    os.symlink(outside, root / "dataset_meta.json")
    _raises(root, "dataset_meta.json", "outside the dataset folder", format="masks")
