"""Hostile COCO files: every field type-checked and located, paths confined to the dataset
folder, bounded work — a located AnnotationError or a valid import, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lensvault.annotations import load
from lensvault.errors import AnnotationError

NAN, INF = float("nan"), float("inf")


def base_doc() -> dict:
    return {
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog", "keypoints": ["nose", "tail"],
                                                  "skeleton": [[1, 2]]}],
        "images": [{"id": 1, "file_name": "a.png", "width": 20, "height": 10},
                   {"id": 2, "file_name": "b.png", "width": 20, "height": 10}],
        "annotations": [
            {"id": 7, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5], "iscrowd": 0},
            {"id": 8, "image_id": 2, "category_id": 2, "bbox": [2, 2, 4, 4],
             "segmentation": [[2, 2, 6, 2, 6, 6, 2, 6]], "keypoints": [3, 3, 2, 5, 5, 2]},
        ],
    }


@pytest.fixture
def coco(tmp_path, make_image):
    """write(doc) -> dataset root with images/a.png, images/b.png and annotations/instances_train.json."""
    root = tmp_path / "ds"
    make_image(root / "images" / "a.png")
    make_image(root / "images" / "b.png")

    def write(doc=None, raw: bytes | None = None) -> Path:
        path = root / "annotations" / "instances_train.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw if raw is not None else json.dumps(doc if doc is not None else base_doc()).encode())
        return root

    return write


def located(root, *, code: str, where: str, **kw) -> AnnotationError:
    with pytest.raises(AnnotationError) as info:
        load(root, format="coco", **kw)
    err = info.value
    assert err.details["findings"][0]["code"] == code, err.details
    assert err.where == where, err.where
    assert err.fix and err.exit_code == 6
    return err


def test_the_base_document_imports(coco):
    aset = load(coco(), format="coco")
    assert aset.annotations.num_rows == 2 and aset.findings == []


def _set(path: str, value):
    """A mutation: set ``annotations.1.bbox.2`` (dotted, ints index lists) to value."""
    def mutate(doc):
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        node = doc
        for p in parents:
            node = node[p]
        node[last] = value
    return mutate


# (mutation, code, location in the file). Each one failed on the old code with a traceback,
# a silent conversion (NaN kept, "1" read as 1, "0" read as crowd) or a wrong location.
TYPE_CASES = [
    ("annotations.0.bbox.2", NAN, "bad-value", "annotations[0].bbox[2]"),
    ("annotations.0.bbox.0", INF, "bad-value", "annotations[0].bbox[0]"),
    ("annotations.0.bbox.1", "1", "bad-value", "annotations[0].bbox[1]"),
    ("annotations.0.bbox.1", True, "bad-value", "annotations[0].bbox[1]"),
    ("annotations.0.bbox.3", [5], "bad-value", "annotations[0].bbox[3]"),
    ("annotations.0.bbox", {"x": 1}, "bad-value", "annotations[0].bbox"),
    ("annotations.0.bbox", [1, 2, 3], "bad-value", "annotations[0].bbox"),
    ("annotations.1.bbox.2", NAN, "bad-value", "annotations[1].bbox[2]"),  # the row-by-row path
    ("annotations.0.category_id", 1.5, "bad-value", "annotations[0].category_id"),
    ("annotations.0.category_id", INF, "bad-value", "annotations[0].category_id"),
    ("annotations.0.category_id", 2**40, "bad-value", "annotations[0].category_id"),
    ("annotations.0.category_id", [1], "bad-value", "annotations[0].category_id"),
    ("annotations.0.image_id", [1], "bad-value", "annotations[0].image_id"),
    ("annotations.0.image_id", None, "bad-value", "annotations[0].image_id"),
    ("annotations.0.iscrowd", "0", "bad-value", "annotations[0].iscrowd"),
    ("annotations.0.iscrowd", 2, "bad-value", "annotations[0].iscrowd"),
    ("annotations.0.id", {"a": 1}, "bad-value", "annotations[0].id"),
    ("annotations.0.attributes", [1, 2], "bad-value", "annotations[0].attributes"),
    ("annotations.0", 5, "malformed", "annotations[0]"),
    ("annotations", {"a": 1}, "bad-value", "annotations"),
    ("annotations", 5, "bad-value", "annotations"),
    ("annotations.1.keypoints.0", "x", "bad-value", "annotations[1].keypoints[0]"),
    ("annotations.1.keypoints.1", NAN, "bad-value", "annotations[1].keypoints[1]"),
    ("annotations.1.keypoints", [1, 2], "bad-value", "annotations[1].keypoints"),
    ("annotations.1.segmentation", "abc", "bad-value", "annotations[1].segmentation"),
    ("annotations.1.segmentation", 5, "bad-value", "annotations[1].segmentation"),
    ("images.0.file_name", 5, "bad-value", "images[0].file_name"),
    ("images.0.file_name", None, "bad-value", "images[0].file_name"),
    ("images.0.file_name", "", "bad-value", "images[0].file_name"),
    ("images.0.file_name", "a\x00.png", "bad-value", "images[0].file_name"),
    ("images.0.width", "20", "bad-value", "images[0].width"),
    ("images.0.width", NAN, "bad-value", "images[0].width"),
    ("images.0.height", -1, "bad-value", "images[0].height"),
    ("images.0.height", 2**40, "bad-value", "images[0].height"),
    ("images.0.id", [1], "bad-value", "images[0].id"),
    ("images.0.id", 1.5, "bad-value", "images[0].id"),
    ("images.1.id", 1, "malformed", "images[1].id"),  # one id for two files
    ("images.0", "a.png", "malformed", "images[0]"),
    ("categories.0.id", INF, "bad-value", "categories[0].id"),
    ("categories.0.id", "one", "bad-value", "categories[0].id"),
    ("categories.0.name", ["cat"], "bad-value", "categories[0].name"),
    ("categories.1.keypoints", ["nose", 3], "bad-value", "categories[1].keypoints"),
    ("categories.1.skeleton", [1, 2], "bad-value", "categories[1].skeleton[0]"),
    ("categories.1.skeleton", [[1, "tail"]], "bad-value", "categories[1].skeleton[0][1]"),
    ("categories", 5, "bad-value", "categories"),
    # Extra fields are kept as attributes/tags: JSON cannot hold NaN or Infinity there either.
    ("annotations.0.score", NAN, "bad-value", "annotations[0].score"),
    ("annotations.1.score", -INF, "bad-value", "annotations[1].score"),  # the row-by-row path
    ("annotations.0.attributes", {"occluded": False, "conf": [0.5, NAN]}, "bad-value",
     "annotations[0].attributes.conf[1]"),
    ("images.0.brightness", NAN, "bad-value", "images[0].brightness"),
    ("images.1.attributes", {"sensor": {"gain": INF}}, "bad-value", "images[1].attributes.sensor.gain"),
]


@pytest.mark.parametrize("path, value, code, where", TYPE_CASES, ids=[f"{c[0]}={c[1]!r}" for c in TYPE_CASES])
def test_every_field_is_type_checked_and_located(coco, path, value, code, where):
    doc = base_doc()
    _set(path, value)(doc)
    err = located(coco(doc), code=code, where=f"annotations/instances_train.json, {where}")
    assert "Traceback" not in str(err)


def test_integral_floats_are_integers_and_keep_working(coco):
    """Some tools write every number as a float: 1.0 is the id 1, 20.0 a width."""
    doc = base_doc()
    doc["images"][0].update(id=1.0, width=20.0)
    doc["annotations"][0].update(image_id=1.0, category_id=1.0)
    aset = load(coco(doc), format="coco")
    assert aset.annotations.column("class_id").to_pylist() == [1, 2]
    assert aset.images.column("width").to_pylist() == [20, 20]


POLYGON_CASES = [
    ([[1, 1, 5, 1, 5]], "bad-polygon", "annotations[1].segmentation[0]", "odd number"),
    ([[1, 1, 5, "x", 5, 5]], "bad-polygon", "annotations[1].segmentation[0][3]", "text"),
    ([[1, 1, 5, NAN, 5, 5]], "bad-polygon", "annotations[1].segmentation[0][3]", "NaN"),
    ([[[1, 1], [5, 1], [5, 5]]], "bad-polygon", "annotations[1].segmentation[0][0]", "a list"),
    ([[1, 1, 5, 1, 5, 5], 7], "bad-polygon", "annotations[1].segmentation[1]", "not a list"),
    ([[]], "bad-polygon", "annotations[1].segmentation[0]", "empty"),
    ([{"size": [10, 20], "counts": [200]}], "bad-polygon", "annotations[1].segmentation[0]", "object"),
]


@pytest.mark.parametrize("seg, code, where, what", POLYGON_CASES)
def test_malformed_polygons(coco, seg, code, where, what):
    doc = base_doc()
    doc["annotations"][1]["segmentation"] = seg
    err = located(coco(doc), code=code, where=f"annotations/instances_train.json, {where}")
    assert what in err.what


def test_a_polygon_under_three_points_is_kept_with_a_finding_unless_it_is_a_line(coco):
    doc = base_doc()
    doc["annotations"][1]["segmentation"] = [[2, 2, 6, 6]]
    aset = load(coco(doc), format="coco")
    [f] = [f for f in aset.findings if f.code == "degenerate-polygon"]
    assert f.location == "annotations[1].segmentation[0]" and f.level == "warning"
    assert aset.annotations.column("polygon").to_pylist()[1] == [[2.0, 2.0, 6.0, 6.0]]
    doc["annotations"][1]["attributes"] = {"shape_type": "line"}  # as our exporter writes labelme lines
    assert not [f for f in load(coco(doc), format="coco").findings if f.code == "degenerate-polygon"]


def _rle_doc(segmentation) -> dict:
    doc = base_doc()
    doc["annotations"][1] = {"id": 8, "image_id": 2, "category_id": 2, "iscrowd": 1, "segmentation": segmentation}
    return doc


RLE_CASES = [
    ({"size": [10, 20], "counts": [1, 2, 3]}, "annotations[1].segmentation.counts", "cover 6 pixels"),
    ({"size": [10, 20], "counts": [-5, 205]}, "annotations[1].segmentation.counts[0]", "not a run length"),
    ({"size": [10, 20], "counts": [100, 100.0]}, "annotations[1].segmentation.counts[1]", "not a run length"),
    ({"size": [10, 20], "counts": "\x00zz"}, "annotations[1].segmentation.counts", "compressed"),
    ({"size": [10, 20], "counts": "zzzzzzzzzzzz"}, "annotations[1].segmentation.counts", "compressed"),
    ({"size": [10, 20], "counts": "0"}, "annotations[1].segmentation.counts", "cover 0 pixels"),
    ({"size": [10, 20], "counts": {"a": 1}}, "annotations[1].segmentation.counts", "an object"),
    ({"size": [10, 20]}, "annotations[1].segmentation.counts", "null"),
    ({"size": ["a", 20], "counts": [200]}, "annotations[1].segmentation.size[0]", "text"),
    ({"size": [NAN, 20], "counts": [200]}, "annotations[1].segmentation.size[0]", "NaN"),
    ({"size": [10], "counts": [200]}, "annotations[1].segmentation.size", "[height, width]"),
    ({}, "annotations[1].segmentation.counts", "null"),
]


@pytest.mark.parametrize("seg, where, what", RLE_CASES)
def test_malformed_rle(coco, seg, where, what):
    """pycocotools checks nothing: counts that do not sum to h*w decode to stray memory."""
    err = located(coco(_rle_doc(seg)), code="bad-rle", where=f"annotations/instances_train.json, {where}")
    assert what in err.what


def test_rle_compressed_and_uncompressed_are_read_and_a_size_mismatch_is_a_finding(coco):
    from pycocotools import mask as mask_utils

    mask = np.zeros((10, 20), dtype=np.uint8, order="F")
    mask[2:5, 3:9] = 1
    compressed = mask_utils.encode(mask)
    compressed["counts"] = compressed["counts"].decode()
    flat = mask.flatten(order="F").tolist()
    runs, value, n = [], 0, 0
    for v in flat:  # uncompressed COCO RLE: run lengths of 0s, 1s, 0s, ... starting with 0s
        if v != value:
            runs.append(n)
            value, n = v, 0
        n += 1
    runs.append(n)
    for seg in (compressed, {"size": [10, 20], "counts": runs}):
        aset = load(coco(_rle_doc(seg)), format="coco")
        row = aset.annotations.to_pylist()[1]
        assert row["kind"] == "rle" and json.loads(row["rle"]) == compressed
        assert (row["x"], row["y"], row["w"], row["h"]) == (3, 2, 6, 3)
        assert aset.findings == []
    other = np.zeros((8, 20), dtype=np.uint8, order="F")
    other[1:3, 1:4] = 1
    wrong = mask_utils.encode(other)
    wrong["counts"] = wrong["counts"].decode()
    aset = load(coco(_rle_doc(wrong)), format="coco")
    [f] = aset.findings
    assert (f.code, f.location) == ("size-mismatch", "annotations[1].segmentation.size")


def test_the_compressed_rle_decoder_agrees_with_pycocotools():
    from pycocotools import mask as mask_utils

    from lensvault.annotations.importers.coco_segmentation import decode_counts

    rng = np.random.default_rng(3)
    for _ in range(50):
        h, w = rng.integers(1, 40, 2)
        mask = np.asfortranarray((rng.random((h, w)) < rng.random()).astype(np.uint8))
        rle = mask_utils.encode(mask)
        runs = decode_counts(rle["counts"].decode())
        assert sum(runs) == h * w
        flat = mask.flatten(order="F")
        assert flat.sum() == sum(runs[1::2])


def test_error_findings_from_validation_stop_any_import(coco):
    """The safety net behind every importer: a NaN box is never "outside" nor "zero-area",
    so validation flags it as an error, and load() raises on error findings in any mode."""
    import pyarrow as pa

    from lensvault.annotations import validate
    from lensvault.annotations.model import AnnotationSet
    from lensvault.annotations.validate import raise_errors

    aset = load(coco(), format="coco")
    anns = aset.annotations.to_pylist()
    anns[1]["w"] = float("nan")
    bad = AnnotationSet(aset.images, pa.Table.from_pylist(anns, schema=aset.annotations.schema), aset.classes)
    findings = validate(bad)
    assert [(f.level, f.code, f.file) for f in findings] == [("error", "bad-value", "images/b.png")]
    with pytest.raises(AnnotationError) as info:
        raise_errors(findings, source="ds")
    assert info.value.where == "images/b.png, annotation 0" and "bad-value" in info.value.what
    raise_errors(list(aset.findings), source="ds")  # warnings alone pass


def test_validate_flags_non_finite_polygons_and_keypoints(coco):
    from lensvault.annotations import validate
    from lensvault.annotations.model import AnnotationSet

    aset = load(coco(), format="coco")
    anns = aset.annotations.to_pylist()
    anns[1]["polygon"] = [[2.0, 2.0, 6.0, NAN, 6.0, 6.0]]
    anns[0]["keypoints"] = [1.0, INF, 2.0]
    import pyarrow as pa

    bad = AnnotationSet(aset.images, pa.Table.from_pylist(anns, schema=aset.annotations.schema), aset.classes)
    found = [(f.level, f.code, f.location) for f in validate(bad) if f.code == "bad-value"]
    assert found == [("error", "bad-value", "annotation 0"), ("error", "bad-value", "annotation 0")]
    assert {f.file for f in validate(bad) if f.code == "bad-value"} == {"images/a.png", "images/b.png"}


# ---------------------------------------------------------------- paths stay inside SRC


@pytest.mark.parametrize("name", ["/etc/hostname", "../../../../../../../../etc/hostname", "../../outside.png",
                                  "..\\..\\..\\outside.png", "images/../../../outside.png"])
def test_file_names_leaving_the_dataset_folder_are_refused(coco, tmp_path, make_image, name):
    make_image(tmp_path / "outside.png")  # exists: the old code found it and recorded "../outside.png"
    doc = base_doc()
    doc["images"][1]["file_name"] = name
    err = located(coco(doc), code="outside-root", where="annotations/instances_train.json, images[1].file_name")
    assert "not read" in err.what


def test_every_outside_name_is_counted(coco):
    doc = base_doc()
    for im in doc["images"]:
        im["file_name"] = "/elsewhere/" + im["file_name"]
    err = located(coco(doc), code="outside-root", where="annotations/instances_train.json, images[0].file_name")
    assert "(and 1 more images)" in err.what


def test_names_that_stay_inside_are_fine_absolute_or_climbing(coco):
    root = coco()
    doc = base_doc()
    doc["images"][0]["file_name"] = str(root.absolute() / "images" / "a.png")
    doc["images"][1]["file_name"] = "../images/b.png"  # relative to annotations/
    aset = load(coco(doc), format="coco")
    assert aset.images.column("path").to_pylist() == ["images/a.png", "images/b.png"]
    assert aset.findings == []


def test_a_missing_image_named_with_dotdot_is_recorded_inside(coco):
    doc = base_doc()
    doc["images"][1]["file_name"] = "../images/gone.png"
    aset = load(coco(doc), format="coco")
    assert aset.images.column("path").to_pylist()[1] == "images/gone.png"
    assert [f.code for f in aset.findings] == ["missing-image"]


def test_a_symlinked_annotation_file_leading_outside_is_not_read(coco, tmp_path):
    root = coco()
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps(base_doc()))
    target = root / "annotations" / "instances_train.json"
    target.unlink()
    target.symlink_to(secret)
    located(root, code="outside-root", where="annotations/instances_train.json")
    # Passing the file itself with --annotations is the user's choice, and works.
    assert load(root, format="coco", annotations=secret).annotations.num_rows == 2


def test_an_annotations_file_outside_src_brings_no_images_from_beside_it(tmp_path, make_image):
    src = tmp_path / "src"
    make_image(src / "a.png")
    elsewhere = tmp_path / "elsewhere"
    make_image(elsewhere / "b.png")
    doc = {"images": [{"id": 1, "file_name": "a.png", "width": 20, "height": 10},
                      {"id": 2, "file_name": "b.png", "width": 20, "height": 10}], "annotations": [],
           "categories": [{"id": 1, "name": "x"}]}
    (elsewhere / "coco.json").write_text(json.dumps(doc))
    aset = load(src, format="coco", annotations=elsewhere / "coco.json")
    assert aset.images.column("path").to_pylist() == ["a.png", "b.png"]
    assert [f.message for f in aset.findings if f.code == "missing-image"] == ["image file 'b.png' is not on disk"]


# ---------------------------------------------------------------- empty, non-object, bounded


@pytest.mark.parametrize("raw, what", [
    (b"", "empty"), (b"  \n", "empty"), (b"[]", "not a COCO file"), (b'""', "not a COCO file"),
    (b"null", "not a COCO file"), (b"42", "not a COCO file"), (b'{"images": {}}', "not a COCO file"),
    (b"\xff\xfe{\x00", "invalid JSON"), (b"\x80abc", "not UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"images": [], "x": ' + b"9" * 5000 + b"}", "4,300 digits"),
])
def test_empty_and_non_object_files(coco, raw, what):
    with pytest.raises(AnnotationError) as info:
        load(coco(raw=raw), format="coco")
    assert what in info.value.what
    assert info.value.where.startswith("annotations/instances_train.json")


def test_utf16_and_bom_files_import(coco):
    text = json.dumps(base_doc())
    assert load(coco(raw=text.encode("utf-16")), format="coco").annotations.num_rows == 2
    assert load(coco(raw=b"\xef\xbb\xbf" + text.encode()), format="coco").annotations.num_rows == 2


def test_deeply_nested_attributes_and_tags_are_refused(coco):
    deep: list = []
    for _ in range(200):
        deep = [deep]
    doc = base_doc()
    doc["annotations"][1]["attributes"] = {"a": deep}
    located(coco(doc), code="too-deep", where="annotations/instances_train.json, annotations[1].attributes.a[0][0][0][0][0]…")
    doc = base_doc()
    doc["images"][0]["meta"] = {"b": deep}
    err = located(coco(doc), code="too-deep",
                  where="annotations/instances_train.json, images[0].meta.b[0][0][0][0]…")
    assert "nested more than 100" in err.what


PIPES = """
import os, sys
from pathlib import Path
from lensvault.annotations import load
from lensvault.annotations.importers.coco import looks_like_coco
from lensvault.errors import AnnotationError
root = Path(sys.argv[1])
os.mkfifo(root / "annotations" / "instances_val.json")
try:
    load(root, format="coco")
except AnnotationError as e:
    print(e.where, "|", e.what)
os.mkfifo(root / "maybe.json")
print(looks_like_coco(root / "maybe.json"))
"""


def test_a_pipe_named_like_an_annotation_file_is_not_opened(coco):
    """open() on a FIFO waits for a writer forever; sniffing and reading check the file type.
    In a subprocess, so that a regression fails on the timeout instead of hanging the suite."""
    r = subprocess.run([sys.executable, "-c", PIPES, str(coco())], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["annotations/instances_val.json | not a regular file (a folder, pipe or device)",
                                     "False"]


SNIFF = """
import os, resource, sys
from pathlib import Path
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from lensvault.annotations.importers.coco import looks_like_coco
from lensvault.annotations.importers.yolo import find_yaml
root = Path(sys.argv[1])
print(looks_like_coco(root / "huge.json"), find_yaml(root).name)
"""


def test_format_sniffing_reads_only_the_head_of_a_huge_file(tmp_path):
    """An 8 GB sparse file, sniffed under a 1 GB address-space limit: reading it whole fails."""
    for name, head in (("huge.json", b'{"images": [], '), ("huge.yaml", b"names: [a]\n")):
        with open(tmp_path / name, "wb") as f:
            f.write(head)
            f.truncate(8 << 30)
    r = subprocess.run([sys.executable, "-c", SNIFF, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "huge.yaml"]


# -- a file is read in steps: its categories, then its images, then its annotations ------------


def test_a_files_first_error_is_in_step_order_categories_images_annotations(coco):
    """Whatever else is wrong later in the file, the error reported is the first step's."""
    doc = base_doc()
    doc["annotations"] = {"not": "a list"}
    doc["images"][1]["width"] = "wide"
    doc["categories"][0]["id"] = "one"
    located(coco(doc), code="bad-value", where="annotations/instances_train.json, categories[0].id")
    del doc["categories"]
    located(coco(doc), code="bad-value", where="annotations/instances_train.json, images[1].width")
    doc["images"][1]["width"] = 20
    located(coco(doc), code="bad-value", where="annotations/instances_train.json, annotations")
    # Within the images, the entry comes first; a name leading outside is refused after every entry.
    doc["annotations"] = []
    doc["images"][0]["file_name"] = "../../outside.png"
    doc["images"][1]["height"] = -3
    located(coco(doc), code="bad-value", where="annotations/instances_train.json, images[1].height")


def test_a_size_the_json_leaves_out_comes_from_the_image_header(coco):
    doc = base_doc()
    del doc["images"][0]["width"]
    doc["images"][0]["height"] = None
    aset = load(coco(doc), format="coco")
    assert aset.images.column("width").to_pylist()[0] > 0 and aset.images.column("height").to_pylist()[0] > 0


def test_an_image_listed_twice_is_recorded_once_with_the_boxes_of_both_entries(coco):
    doc = base_doc()
    doc["images"].append({"id": 3, "file_name": "images/a.png", "width": 20, "height": 10, "time_of_day": "day"})
    doc["annotations"].append({"id": 9, "image_id": 3, "category_id": 1, "bbox": [3, 3, 2, 2]})
    aset = load(coco(doc), format="coco")
    assert aset.images.column("path").to_pylist() == ["images/a.png", "images/b.png"]
    assert aset.images.column("tags").to_pylist() == ["{}", "{}"]  # the first entry's
    assert [f.code for f in aset.findings] == ["duplicate-image"]
    assert aset.findings[0].location == "image id 3" and "its annotations are merged" in aset.findings[0].message
    boxes = aset.annotations.select(["image", "index", "x"]).to_pylist()
    assert [(b["image"], b["index"]) for b in boxes] == [("images/a.png", 0), ("images/b.png", 0), ("images/a.png", 1)]


def test_attributes_and_tags_objects_of_an_image_join_its_extra_keys(coco):
    doc = base_doc()
    doc["images"][0].update(time_of_day="night", attributes={"camera": "c1"}, tags={"weather": "rain"})
    doc["images"][1].update(attributes="not an object", tags=[1])  # known keys, not objects: nothing to keep
    aset = load(coco(doc), format="coco")
    assert aset.images.column("tags").to_pylist() == ['{"camera":"c1","time_of_day":"night","weather":"rain"}', "{}"]


def test_a_missing_bbox_comes_from_the_segmentation_or_the_keypoints(coco):
    doc = base_doc()
    del doc["annotations"][1]["bbox"]
    doc["annotations"].append({"id": 9, "image_id": 1, "category_id": 2, "keypoints": [4, 6, 2, 9, 1, 1, 0, 0, 0]})
    aset = load(coco(doc), format="coco")
    boxes = aset.annotations.select(["kind", "x", "y", "w", "h"]).to_pylist()
    assert boxes[1] == {"kind": "polygon", "x": 2.0, "y": 2.0, "w": 4.0, "h": 4.0}
    assert boxes[2] == {"kind": "keypoints", "x": 4.0, "y": 1.0, "w": 5.0, "h": 5.0}  # visible points only
    doc["annotations"][0]["bbox"] = []
    err = located(coco(doc), code="malformed", where="annotations/instances_train.json, annotation id 7")
    assert "no usable bbox" in err.what
