"""A big COCO file is read a chunk of annotations at a time (importers/coco_stream.py): the same
normalized model, findings and errors as the whole-file parse, whatever the chunk boundaries.

The size from which a file streams is lowered to 0 here (and the chunk to a few annotations),
so small real files take the streaming path; each case is imported both ways and compared.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import lensvault.annotations as A
from lensvault.annotations.importers import coco_stream
from lensvault.errors import AnnotationError

from .conftest import SAMPLES, write_image


def _both(monkeypatch, root: Path, **kw):
    """(whole-file result, streamed result) of importing ``root``, or the errors each raised."""
    def run():
        try:
            return A.load(root, format="coco", **kw)
        except AnnotationError as e:
            return e

    monkeypatch.setattr(coco_stream, "STREAM_FROM", 1 << 60)
    whole = run()
    monkeypatch.setattr(coco_stream, "STREAM_FROM", 0)
    monkeypatch.setattr(coco_stream, "CHUNK", 3)
    return whole, run()


def _same(whole, streamed) -> None:
    if isinstance(whole, AnnotationError):
        assert isinstance(streamed, AnnotationError), streamed
        assert (streamed.what, streamed.where, streamed.fix) == (whole.what, whole.where, whole.fix)
        return
    assert not isinstance(streamed, AnnotationError), streamed
    assert streamed.images.equals(whole.images) and streamed.annotations.equals(whole.annotations)
    assert streamed.classes.to_dict() == whole.classes.to_dict()
    assert [f.to_dict() for f in streamed.findings] == [f.to_dict() for f in whole.findings]
    assert streamed.description == whole.description


@pytest.mark.parametrize("sample", ["coco_instances", "coco_person_keypoints", "mmdet_coco", "coco_roboflow",
                                    "coco_stuff"])
def test_the_samples_stream_to_the_same_model(monkeypatch, sample):
    whole, streamed = _both(monkeypatch, SAMPLES / "coco_dataset" / sample)
    _same(whole, streamed)
    assert not isinstance(whole, AnnotationError)


def _coco(tmp_path: Path, annotations, *, images: int = 4, extra: dict | None = None) -> Path:
    root = tmp_path / "ds"
    for i in range(images):
        write_image(root / "images" / f"{i}.png", 40, 30)
    doc = {"annotations": annotations,  # before the images: the stream reads images first anyway
           "images": [{"id": i + 1, "file_name": f"{i}.png", "width": 40, "height": 30} for i in range(images)],
           "categories": [{"id": 1, "name": "cell"}, {"id": 2, "name": "dot"}], **(extra or {})}
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "instances.json").write_text(json.dumps(doc))
    return root


def _box(n: int, **kw) -> dict:
    return {"id": n + 1, "image_id": n % 4 + 1, "category_id": n % 2 + 1, "bbox": [1, 2, 3 + n % 5, 4], "iscrowd": 0,
            **kw}


def test_plain_boxes_and_rows_mixed_across_chunks(monkeypatch, tmp_path):
    anns = [_box(n) for n in range(11)]
    anns[4] = _box(4, segmentation=[[1, 1, 9, 1, 9, 9]])  # a polygon: its chunk goes row by row
    anns[8] = _box(8, attributes={"occluded": True})
    del anns[9]["id"]  # an id from its position in the file, not in its chunk
    whole, streamed = _both(monkeypatch, _coco(tmp_path, anns))
    _same(whole, streamed)
    assert whole.annotations.num_rows == 11


@pytest.mark.parametrize("case", ["bad bbox late", "unknown image late", "annotations an object", "no annotations",
                                  "no images", "images an object"])
def test_errors_name_the_same_place(monkeypatch, tmp_path, case):
    anns: object = [_box(n) for n in range(10)]
    extra: dict = {}
    if case == "bad bbox late":
        anns[7]["bbox"] = [1, 2, "3", 4]  # type: ignore[index]
    elif case == "unknown image late":
        anns[8]["image_id"] = 99  # type: ignore[index]
    elif case == "annotations an object":
        anns = {"0": _box(0)}
    elif case == "no annotations":
        anns = []
    root = _coco(tmp_path, anns, extra=extra)
    if case.startswith("no images") or case == "images an object":
        doc = json.loads((root / "annotations" / "instances.json").read_text())
        if case == "no images":
            del doc["images"]
        else:
            doc["images"] = {"1": doc["images"][0]}
        (root / "annotations" / "instances.json").write_text(json.dumps(doc))
    whole, streamed = _both(monkeypatch, root)
    _same(whole, streamed)
    if case in ("bad bbox late", "unknown image late", "annotations an object", "no images"):
        assert isinstance(whole, AnnotationError)


def test_broken_json_is_a_located_error_not_a_traceback(monkeypatch, tmp_path):
    root = _coco(tmp_path, [_box(n) for n in range(10)])
    path = root / "annotations" / "instances.json"
    path.write_text(path.read_text()[:-40])  # cut short, as a failed download is
    monkeypatch.setattr(coco_stream, "STREAM_FROM", 0)
    with pytest.raises(AnnotationError) as e:
        A.load(root, format="coco")
    assert e.value.what.startswith("invalid JSON") and "instances.json" in str(e.value.where)
