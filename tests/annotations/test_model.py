from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lensvault.annotations import (
    ANNOTATION_SCHEMA,
    IMAGE_SCHEMA,
    AnnotationColumns,
    ClassMap,
    Finding,
    ImageColumns,
    canonical_json,
)


def test_classmap_keeps_non_contiguous_ids_and_round_trips_through_dict():
    cm = ClassMap((1, 2, 4), ("a", "b", "c"), {4: {"names": ["nose"], "skeleton": [[0, 1]]}})
    assert cm.name_of(4) == "c"
    assert cm.id_of("b") == 2
    assert 3 not in cm and 4 in cm
    assert ClassMap.from_dict(cm.to_dict()) == cm
    with pytest.raises(KeyError):
        cm.name_of(3)
    with pytest.raises(KeyError):
        cm.id_of("zebra")


def test_classmap_rejects_repeated_ids_and_length_mismatch():
    with pytest.raises(ValueError, match="ids repeat"):
        ClassMap((1, 1), ("a", "b"))
    with pytest.raises(ValueError, match="one name per id"):
        ClassMap((1,), ("a", "b"))


def test_finding_round_trips_and_names_its_location():
    f = Finding("warning", "zero-area-box", "box has zero area", "Annotations/x.xml", "object 3")
    assert Finding.from_dict(f.to_dict()) == f
    assert "Annotations/x.xml, object 3" in str(f)


def test_canonical_json_is_order_independent():
    assert canonical_json({"b": 1, "a": "é"}) == canonical_json({"a": "é", "b": 1}) == '{"a":"é","b":1}'


def test_columns_build_tables_with_the_documented_schema_and_per_image_index():
    images = ImageColumns()
    images.add("images/a.jpg", 10, 5, split="train", tags={"time_of_day": "night"})
    images.add("images/b.jpg", 10, 5)
    anns = AnnotationColumns()
    anns.add("images/a.jpg", 0, 1, 1, 2, 2)
    anns.add("images/b.jpg", 1, 0, 0, 1, 1, kind="polygon", polygon=[[0, 0, 1, 0, 1, 1]])
    anns.add("images/a.jpg", 0, 3, 3, 1, 1, kind="keypoints", keypoints=[3, 3, 2])
    it, at = images.table(), anns.table()
    assert it.schema == IMAGE_SCHEMA and at.schema == ANNOTATION_SCHEMA
    assert at.column("index").to_pylist() == [0, 0, 1]
    assert it.column("tags").to_pylist() == ['{"time_of_day":"night"}', "{}"]
    assert at.column("polygon").type == pa.list_(pa.list_(pa.float64()))


@settings(max_examples=200, deadline=None)
@given(
    x=st.floats(0, 1000, allow_nan=False), y=st.floats(0, 1000, allow_nan=False),
    w=st.floats(0, 1000, allow_nan=False), h=st.floats(0, 1000, allow_nan=False),
)
def test_voc_corner_conversion_round_trips_exactly(x, y, w, h):
    """The exporter's 1-based corners parse back to the same box (floats as repr text)."""
    from lensvault.annotations.exporters._files import num

    xmin, ymin = float(num(x + 1)), float(num(y + 1))
    xmax, ymax = float(num(x + 1 + w)), float(num(y + 1 + h))
    assert xmin - 1.0 == pytest.approx(x, abs=1e-9)
    assert xmax - xmin == pytest.approx(w, abs=1e-9)
    assert ymin - 1.0 == pytest.approx(y, abs=1e-9)
    assert ymax - ymin == pytest.approx(h, abs=1e-9)


@settings(max_examples=200, deadline=None)
@given(
    width=st.integers(1, 4096), height=st.integers(1, 4096),
    fx=st.floats(0, 1), fy=st.floats(0, 1), fw=st.floats(0, 1), fh=st.floats(0, 1),
)
def test_yolo_line_round_trips_within_a_thousandth_of_a_pixel_scale(width, height, fx, fy, fw, fh):
    from lensvault.annotations.exporters.yolo import _line

    x, y = fx * width, fy * height
    w, h = fw * (width - x), fh * (height - y)
    row = {"x": x, "y": y, "w": w, "h": h, "kind": "bbox", "polygon": None, "attributes": "{}"}
    cls, cx, cy, nw, nh = _line(row, 3, width, height).split()
    assert cls == "3"
    # 6 decimals of a normalized value: error <= 5e-7 * size.
    tol = 1e-6 * max(width, height)
    assert (float(cx) - float(nw) / 2) * width == pytest.approx(x, abs=tol)
    assert float(nw) * width == pytest.approx(w, abs=tol)
    assert (float(cy) - float(nh) / 2) * height == pytest.approx(y, abs=tol)
    assert float(nh) * height == pytest.approx(h, abs=tol)


def test_public_api_is_what_we_mean():
    import lensvault.annotations as ann

    assert ann.__all__ == sorted(ann.__all__)
    assert {"load", "export", "detect", "validate", "AnnotationSet", "ClassMap", "Finding"} <= set(ann.__all__)
    assert set(ann.FORMATS) == {"coco", "yolo", "voc", "labelme", "masks", "imagefolder", "labels"}
    assert set(ann.EXPORT_FORMATS) == {"coco", "yolo", "voc", "labelme", "masks", "imagefolder", "labels"}


def test_import_lensvault_does_not_load_the_annotation_layer():
    import subprocess
    import sys

    code = "import sys, lensvault; print('lensvault.annotations' in sys.modules, 'pyarrow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_canonical_json_is_standard_json_only():
    """NaN/Infinity would be written as the non-standard NaN (and NaN != NaN): refused; the
    importers report such values located before they get here."""
    import math

    from lensvault.annotations.model import canonical_json

    assert canonical_json({"b": 1.5, "a": [None, "x"]}) == '{"a":[null,"x"],"b":1.5}'
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError, match="not JSON compliant"):
            canonical_json({"a": [bad]})
