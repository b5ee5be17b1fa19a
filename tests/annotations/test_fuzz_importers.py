"""Property-based fuzzing of the VOC, labelme and mask importers (issue 11): whatever the input,
the result is a located error (a LensVaultError with ``where``) or a valid import — nothing else:
no traceback, no NaN in the tables, no path outside the dataset folder."""

from __future__ import annotations

import base64
import io
import json
import math
import shutil
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from lensvault.annotations import load
from lensvault.errors import LensVaultError

from .conftest import BCCD

JPEG = BCCD / "BCCD" / "JPEGImages" / "BloodImage_00000.jpg"
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

numbers = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([0, 1, 640, 480, 2**31, -1]))
texts = st.one_of(st.text(max_size=20), st.sampled_from(["", "nan", "inf", "-0", "1e999", "1,5", " 12 ", "../x.jpg",
                                                         "/etc/passwd", "C:\\x.jpg", "BloodImage_00000.jpg", "a.jpg"]))
# Mostly sensible values, so that most examples get past the first check and reach deeper code.
good_numbers = st.one_of(st.integers(0, 700), st.floats(0, 700, allow_nan=False))
coords = st.one_of(good_numbers, good_numbers, good_numbers, numbers)
coord_texts = st.one_of(good_numbers.map(str), good_numbers.map(str), good_numbers.map(str), numbers.map(str), texts)
names = st.one_of(st.sampled_from(["cell", "RBC", "WBC", "__ignore__", "_background_"]), texts)

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, texts),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=12)


def _check(root: Path, **kw) -> None:
    """The property: a valid import or a located LensVaultError."""
    try:
        aset = load(root, **kw)
    except LensVaultError as e:
        assert e.where, f"error without a location: {e}"
        return
    for column in ("x", "y", "w", "h"):
        values = aset.annotations.column(column).to_pylist()
        assert all(math.isfinite(v) for v in values), column
    real = root.resolve()
    for path in aset.images.column("path").to_pylist():
        assert path and not path.startswith("/") and ".." not in path.split("/"), path
        assert (root / path).resolve().is_relative_to(real)
    for f in aset.findings:
        assert f.file is not None


def _mutate(data: bytes, cuts: list[int], flips: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for i, b in flips:
        if out:
            out[i % len(out)] = b
    for c in cuts:
        out = out[: c % (len(out) + 1)]
    return bytes(out)


# -- Pascal VOC --------------------------------------------------------------------------------

# XML 1.0 cannot carry control characters at all (byte-level damage is fuzzed separately).
xml_texts = st.one_of(st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20), texts.filter(str.isprintable))
ordered_box = st.tuples(good_numbers, good_numbers, good_numbers, good_numbers).map(
    lambda b: [str(b[0]), str(b[1]), str(b[0] + b[2]), str(b[1] + b[3])])
voc_objects = st.lists(st.fixed_dictionaries({
    "name": st.one_of(names.filter(str.isprintable), xml_texts),
    "box": st.one_of(ordered_box, ordered_box, st.lists(coord_texts.filter(str.isprintable), max_size=4)),
    "difficult": texts,
    "part": st.booleans(),
}), max_size=4)


@SETTINGS
@given(filename=st.one_of(st.just("BloodImage_00000.jpg"), xml_texts), folder=xml_texts,
       width=st.one_of(st.just("640"), st.just("640"), st.integers(0, 2000).map(str), coord_texts.filter(str.isprintable)),
       height=st.one_of(st.just("480"), st.just("480"), st.integers(0, 2000).map(str),
                        coord_texts.filter(str.isprintable)),
       objects=voc_objects, mutate=st.integers(0, 3), cuts=st.lists(st.integers(0, 4000), max_size=1),
       flips=st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), max_size=3))
def test_voc_importer_gives_a_located_error_or_a_valid_import(filename, folder, width, height, objects, mutate, cuts,
                                                              flips):
    ann = ET.Element("annotation")
    ET.SubElement(ann, "folder").text = folder
    ET.SubElement(ann, "filename").text = filename
    size = ET.SubElement(ann, "size")
    ET.SubElement(size, "width").text = width
    ET.SubElement(size, "height").text = height
    for obj in objects:
        o = ET.SubElement(ann, "object")
        ET.SubElement(o, "name").text = obj["name"]
        ET.SubElement(o, "difficult").text = obj["difficult"] if obj["difficult"].isprintable() else "1"
        box = ET.SubElement(o, "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), obj["box"]):
            ET.SubElement(box, tag).text = value
        if obj["part"]:
            part = ET.SubElement(o, "part")
            ET.SubElement(part, "name").text = "head"
            ET.SubElement(ET.SubElement(part, "bndbox"), "xmin").text = obj["name"]
    data = ET.tostring(ann, encoding="utf-8")
    if mutate == 0:  # a quarter of the files damaged at the byte level
        data = _mutate(data, cuts, flips)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ds"
        (root / "Annotations").mkdir(parents=True)
        (root / "JPEGImages").mkdir()
        shutil.copy(JPEG, root / "JPEGImages" / "BloodImage_00000.jpg")
        (root / "Annotations" / "BloodImage_00000.xml").write_bytes(data)
        _check(root, format="voc")


# -- labelme -----------------------------------------------------------------------------------

def _png_b64(w: int, h: int) -> str:
    buf = io.BytesIO()
    Image.fromarray(np.full((max(1, h), max(1, w)), 255, dtype=np.uint8)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


shape_types = st.sampled_from(["polygon", "rectangle", "circle", "line", "linestrip", "point", "points", "mask"])
good_shape = st.fixed_dictionaries({
    "label": names,
    "points": st.lists(st.lists(coords, min_size=2, max_size=2), min_size=1, max_size=5),
    "shape_type": shape_types,
    "group_id": st.one_of(st.none(), st.integers(0, 9)),
    "flags": st.just({}),
    "mask": st.one_of(st.none(), st.builds(_png_b64, st.integers(1, 6), st.integers(1, 6))),
})
bad_shape = st.fixed_dictionaries({
    "label": st.one_of(names, json_values),
    "points": st.one_of(json_values, st.lists(st.lists(numbers, max_size=3), max_size=5)),
    "shape_type": st.one_of(shape_types, st.just("cuboid"), json_values),
    "group_id": st.one_of(st.none(), st.integers(), json_values),
    "flags": st.one_of(st.just({}), json_values),
    "mask": st.one_of(st.none(), st.builds(_png_b64, st.integers(1, 6), st.integers(1, 6)), texts),
})
shapes = st.lists(st.one_of(good_shape, good_shape, good_shape, bad_shape, json_values), max_size=4)


@SETTINGS
@given(shapes=shapes, image_path=st.one_of(st.just("a.jpg"), st.just("a.jpg"), texts, json_values),
       width=st.one_of(st.just(640), numbers, json_values), height=st.one_of(st.just(480), numbers, json_values),
       image_data=st.one_of(st.none(), st.none(), texts, st.just("embedded")),
       image_file=st.booleans(), extra=st.dictionaries(texts, json_values, max_size=3))
def test_labelme_importer_gives_a_located_error_or_a_valid_import(shapes, image_path, width, height, image_data,
                                                                  image_file, extra):
    if image_data == "embedded":
        image_data = base64.b64encode(JPEG.read_bytes()[:2000] if width == 1 else JPEG.read_bytes()).decode()
    doc = {**extra, "version": "5.4.1", "shapes": shapes, "imagePath": image_path, "imageData": image_data,
           "imageWidth": width, "imageHeight": height}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ds"
        root.mkdir()
        if image_file:
            shutil.copy(JPEG, root / "a.jpg")
        (root / "a.json").write_text(json.dumps(doc, allow_nan=True))
        _check(root, format="labelme")


# -- segmentation masks ---------------------------------------------------------------------------

@SETTINGS
@given(label_map=st.one_of(
           st.integers(1, 6).map(lambda n: {str(i): f"c{i}" for i in range(n)}),
           st.integers(1, 6).map(lambda n: {str(i): f"c{i}" for i in range(n)}),
           st.dictionaries(st.one_of(st.integers(-2, 5).map(str), texts), st.one_of(texts, json_values), max_size=5),
           json_values),
       colours=st.one_of(st.none(), st.lists(st.lists(st.integers(0, 255), min_size=3, max_size=3), max_size=6),
                         st.lists(st.lists(st.one_of(st.integers(-5, 300), json_values), max_size=4), max_size=6),
                         json_values),
       background=st.one_of(st.none(), st.none(), st.sampled_from(["0", 1]), json_values),
       mask=st.lists(st.one_of(st.integers(0, 5), st.integers(0, 5), st.integers(0, 255)), min_size=1, max_size=20),
       mode=st.sampled_from(["L", "L", "P", "RGB", "bytes"]), shape=st.sampled_from([(1, 5), (1, 5), (2, 3)]),
       cuts=st.lists(st.integers(0, 300), max_size=1))
def test_mask_importer_gives_a_located_error_or_a_valid_import(label_map, colours, background, mask, mode, shape, cuts):
    meta = {"label_map": label_map}
    if colours is not None:
        meta["segmentation_colors"] = colours
    if background is not None:
        meta["background_label"] = background
    values = np.resize(np.asarray(mask, dtype=np.uint8), shape)
    buf = io.BytesIO()
    if mode == "RGB":
        Image.fromarray(np.stack([values, values // 2, values // 3], axis=-1)).save(buf, format="PNG")
    elif mode == "P":
        im = Image.fromarray(values, mode="P")
        im.putpalette(list(range(256)) * 3)
        im.save(buf, format="PNG")
    else:
        Image.fromarray(values, mode="L").save(buf, format="PNG")
    data = buf.getvalue() if mode != "bytes" else _mutate(buf.getvalue(), cuts, [])
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ds"
        (root / "images").mkdir(parents=True)
        (root / "masks").mkdir()
        Image.new("RGB", (5, 1), (1, 2, 3)).save(root / "images" / "0001.png")
        (root / "masks" / "0001.png").write_bytes(data)
        (root / "dataset_meta.json").write_text(json.dumps(meta, allow_nan=True))
        _check(root, format="masks")
