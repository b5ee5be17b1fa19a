"""``AnnotationColumns`` turns rows into Arrow record batches as they are added (model.py): the
written tables must be byte for byte what one table built from the whole lists gave, wherever
the batch boundaries fall, for every importer (they all share the columns), and COCO's
column-wise plain-box path must write what its row-by-row path writes."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

import lensvault.annotations as A
from lensvault.annotations.importers import coco
from lensvault.annotations.model import ANNOTATION_SCHEMA, AnnotationColumns
from lensvault.datasets.files_table import to_parquet_bytes

from .conftest import BCCD, SAMPLES, write_image

CASES = [
    ("coco", SAMPLES / "coco_dataset" / "coco_instances"),
    ("coco", SAMPLES / "coco_dataset" / "coco_person_keypoints"),
    ("coco", SAMPLES / "coco_dataset" / "mmdet_coco"),
    ("coco", SAMPLES / "coco_dataset" / "coco_stuff"),
    ("voc", BCCD / "BCCD"),
    ("voc", SAMPLES / "voc_dataset" / "voc_dataset1"),
    ("yolo", SAMPLES / "yolo_dataset" / "strict"),
    ("masks", SAMPLES / "common_semantic_segmentation_dataset" / "dataset"),
    ("labelme", None),  # generated: the samples hold no labelme JSON
]


def _as_lists(monkeypatch) -> None:
    """Build the table the way it was built before batches: every row in the lists, one array
    per column at the end; COCO's plain boxes row by row."""
    monkeypatch.setattr(AnnotationColumns, "FLUSH_ROWS", 1 << 60)
    monkeypatch.setattr(coco, "_plain_box_columns", lambda *a, **k: None)
    real_flush = AnnotationColumns.flush
    monkeypatch.setattr(AnnotationColumns, "flush", lambda self: None)
    real_table = AnnotationColumns.table

    def one_table(self: AnnotationColumns) -> pa.Table:
        real_flush(self)
        return real_table(self).combine_chunks()

    monkeypatch.setattr(AnnotationColumns, "table", one_table)


@pytest.mark.parametrize(("fmt", "root"), CASES, ids=lambda v: v if isinstance(v, str) else getattr(v, "name", "generated"))
def test_batched_tables_write_the_same_bytes_as_whole_lists(tmp_path, monkeypatch, fmt, root):
    if root is None:
        from .test_class_lists import _labelme

        root = _labelme(tmp_path / "lm", {"a": [("RBC", [[1, 1], [9, 9]]), ("WBC", [[2, 2], [8, 8], [2, 8]])],
                                          "b": [("WBC", [[3, 3], [20, 20]])], "c": []})
    with monkeypatch.context() as m:
        m.setattr(AnnotationColumns, "FLUSH_ROWS", 3)  # many batches, boundaries mid-image
        batched = A.load(root, format=fmt)
    with monkeypatch.context() as m:
        _as_lists(m)
        whole = A.load(root, format=fmt)
    assert batched.annotations.num_rows == whole.annotations.num_rows > 0
    assert whole.annotations.column(0).num_chunks == 1
    assert to_parquet_bytes(batched.annotations) == to_parquet_bytes(whole.annotations)
    assert to_parquet_bytes(batched.images) == to_parquet_bytes(whole.images)
    assert [f.to_dict() for f in batched.findings] == [f.to_dict() for f in whole.findings]


def test_plain_boxes_and_rows_interleave_in_source_order(tmp_path, monkeypatch):
    """A COCO file whose chunks alternate between plain boxes (column-wise) and boxes with
    attributes (row by row): rows stay in file order, each image's ``index`` counts on across
    chunks, and the bytes equal the row-by-row build."""
    from lensvault.annotations.importers import coco_stream

    root = tmp_path / "ds"
    for i in range(3):
        write_image(root / "images" / f"{i}.png", 40, 30)
    anns = []
    for n in range(24):
        a = {"id": n + 1, "image_id": n % 3 + 1, "category_id": n % 2 + 1, "bbox": [n, 1.5, 2, 3], "iscrowd": 0}
        if (n // 4) % 2:  # chunks of 4: every other one has attributes
            a["attributes"] = {"occluded": n % 3 == 0}
        anns.append(a)
    (root / "ann.json").write_text(json.dumps({
        "images": [{"id": i + 1, "file_name": f"images/{i}.png", "width": 40, "height": 30} for i in range(3)],
        "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}], "annotations": anns}))
    monkeypatch.setattr(coco_stream, "STREAM_FROM", 0)
    monkeypatch.setattr(coco_stream, "CHUNK", 4)
    batched = A.load(root, format="coco")
    with monkeypatch.context() as m:
        _as_lists(m)
        whole = A.load(root, format="coco")
    table = batched.annotations
    assert table.column("x").to_pylist() == [float(n) for n in range(24)]
    assert table.column("index").to_pylist() == [n // 3 for n in range(24)]
    assert table.column("x").num_chunks == 6
    assert to_parquet_bytes(table) == to_parquet_bytes(whole.annotations)


def test_columns_count_and_locate_rows_across_batches(monkeypatch):
    monkeypatch.setattr(AnnotationColumns, "FLUSH_ROWS", 4)
    cols = AnnotationColumns()
    fid = cols.file_id("labels/a.txt")
    for n in range(10):
        cols.add(f"img{n % 2}.png", n % 3, n, 0, 1, 1, origin=(fid, f"line {n + 1}"))
    assert len(cols) == 10 and len(cols.image) == 2  # two batches of 4 flushed, 2 rows pending
    assert cols.class_ids() == {0, 1, 2}
    assert cols.origin(5) == ("labels/a.txt", "line 6")
    table = cols.table()
    assert table.schema == ANNOTATION_SCHEMA and table.num_rows == 10
    assert table.column("index").to_pylist() == [n // 2 for n in range(10)]
    assert cols.table().equals(table)  # table() can be asked again
    assert AnnotationColumns().table().num_rows == 0


def test_validation_in_batches_finds_and_locates_the_same(tmp_path, monkeypatch):
    """The row checks run a batch of rows at a time (validate._BATCH): findings in every batch,
    in the same order, with the same locations as one pass over the table."""
    import importlib

    V = importlib.import_module("lensvault.annotations.validate")

    root = tmp_path / "ds"
    for i in range(2):
        write_image(root / "images" / f"{i}.png", 40, 30)
    anns = [{"id": n + 1, "image_id": n % 2 + 1, "category_id": 1 + (n % 7 == 3) * 8,
             "bbox": [35 if n % 5 == 1 else 1, 1, 0 if n % 4 == 2 else 10, 10], "iscrowd": 0} for n in range(20)]
    anns.append({"id": 99, "image_id": 1, "category_id": 1, "bbox": [1, 1, 1, 1], "keypoints": [1, 1, 2, 5, 5, 2]})
    (root / "ann.json").write_text(json.dumps({
        "images": [{"id": i + 1, "file_name": f"images/{i}.png", "width": 40, "height": 30} for i in range(2)],
        "categories": [{"id": 1, "name": "a"}], "annotations": anns}))
    monkeypatch.setattr(V, "_BATCH", 3)
    batched = [f.to_dict() for f in A.load(root, format="coco").findings]
    monkeypatch.setattr(V, "_BATCH", 1 << 30)
    whole = [f.to_dict() for f in A.load(root, format="coco").findings]
    assert batched == whole
    codes = [f["code"] for f in whole]
    assert codes.count("box-outside-image") == 3 and codes.count("zero-area-box") == 5
    assert codes.count("unknown-class") == 3
    assert [f["location"] for f in whole if f["code"] == "unknown-class"] == [
        "annotation id 4", "annotation id 11", "annotation id 18"]


@pytest.mark.parametrize("plain", [True, False])
def test_findings_name_integer_text_and_huge_annotation_ids(tmp_path, plain):
    """COCO keeps each row's id compactly (coco._RowIds): integer, text and beyond-int64 ids
    still name their annotation in findings, on the column-wise and the row-by-row path."""
    root = tmp_path / "ds"
    write_image(root / "images" / "0.png", 40, 30)
    ids = [7, "box-b", 1 << 70, -3]
    anns = [{"id": i, "image_id": 1, "category_id": 1, "bbox": [30, 1, 20, 5], "iscrowd": 0} for i in ids]
    if not plain:
        anns[0]["attributes"] = {"note": "x"}  # not a plain box: the row-by-row path
    (root / "ann.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "images/0.png", "width": 40, "height": 30}],
        "categories": [{"id": 1, "name": "a"}], "annotations": anns}))
    found = [f.location for f in A.load(root, format="coco").findings if f.code == "box-outside-image"]
    assert found == [f"annotation id {i}" for i in ids]


def test_a_snapshot_of_a_batched_import_stores_the_same_annotations_object(tmp_path, monkeypatch):
    """The stored annotations table (content-addressed) of a many-batch import is the object the
    one-array build stored: re-importing unchanged data never makes a new object."""
    import lensvault

    oids = []
    for n, flush in enumerate((1 << 60, 5)):
        monkeypatch.setattr(AnnotationColumns, "FLUSH_ROWS", flush)
        v = lensvault.init(tmp_path / f"vault{n}")
        try:
            ds = v.snapshot("cells", BCCD, format="voc", version="1.0.0")
            oids.append(ds.manifest().tables["annotations"]["oid"])
        finally:
            v.close()
    assert oids[0] == oids[1]


@pytest.mark.parametrize("rows", [10, 1 << 20])
def test_annotation_rows_find_their_image_row_the_same_both_ways(rows):
    """validate.image_rows: one hash per batch (a table of one batch) or one dict for all batches
    (more): the same image row for each path, the first row of a path given twice, and none
    for a path that is not an image (or no path)."""
    import pyarrow as pa

    from lensvault.annotations.validate import image_rows

    paths = pa.chunked_array([["a.png", "b.png"], ["c.png", "a.png"]])
    idx, missing = image_rows(paths, rows)(pa.array(["c.png", "zz.png", "a.png", None, "b.png"]))
    assert idx.tolist() == [2, 0, 0, 0, 1]
    assert missing.tolist() == [False, True, False, True, False]
    idx, missing = image_rows(pa.chunked_array([], pa.string()), rows)(pa.array(["a.png"]))
    assert idx.tolist() == [0] and missing.tolist() == [True]
