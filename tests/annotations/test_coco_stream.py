"""A big COCO file is read a chunk of annotations at a time (importers/coco_stream.py): the same
normalized model, findings and errors as the whole-file parse, whatever the chunk boundaries.

The size from which a file streams is lowered to 0 here (and the chunk to a few annotations),
so small real files take the streaming path; each case is imported both ways and compared.
"""

from __future__ import annotations

import itertools
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


def _write(tmp_path: Path, text: str | bytes, images: int = 4) -> Path:
    root = tmp_path / "ds"
    for i in range(images):
        write_image(root / "images" / f"{i}.png", 40, 30)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    path = root / "annotations" / "instances.json"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return root


_TRICKY = 'a "quoted" ],{ [} \\ \\" \\\\ text, é ✓'  # brackets, commas, escapes inside strings


def _members() -> dict[str, object]:
    anns = [_box(n) for n in range(11)]
    anns[2]["attributes"] = {"note": _TRICKY, "parts": [{"a": [1, {"b": 2}]}, {"c": "]"}]}
    anns[6] = _box(6, segmentation=[[1, 1, 9, 1, 9, 9], [2, 2, 8, 2, 8, 8]])
    images = [{"id": i + 1, "file_name": f"{i}.png", "width": 40, "height": 30} for i in range(4)]
    images[1]["note"] = _TRICKY
    return {"images": images, "categories": [{"id": 1, "name": "cell"}, {"id": 2, "name": "dot \\ ]"}],
            "annotations": anns, "info": {"description": _TRICKY, "list": [[1], [2, [3]]]},
            "licenses": [{"id": 1, "name": "x, [y]"}]}


@pytest.mark.parametrize("order", list(itertools.permutations(["images", "categories", "annotations"])))
@pytest.mark.parametrize("block", [1, 7, None])
def test_members_in_any_order_and_any_block_size_read_the_same(monkeypatch, tmp_path, order, block):
    """One scan finds the members wherever they are (annotations before images, categories
    last); strings holding brackets, commas and escaped quotes, and blocks that end anywhere
    (inside a string, after a backslash) do not mislead it."""
    members = _members()
    doc = {"info": members.pop("info"), **{k: members[k] for k in order}, "licenses": members["licenses"]}
    root = _write(tmp_path, json.dumps(doc, ensure_ascii=False))
    if block is not None:
        monkeypatch.setattr(coco_stream, "BLOCK", block)
    whole, streamed = _both(monkeypatch, root)
    _same(whole, streamed)
    assert not isinstance(whole, AnnotationError) and whole.annotations.num_rows == 11


def test_a_key_given_twice_counts_by_its_last_value(monkeypatch, tmp_path):
    members = _members()
    first = json.dumps({"images": members["images"][:1], "annotations": [], "categories": {"not": "a list"}})
    text = first[:-1] + ", " + json.dumps(members)[1:]  # {"images": [one], ..., "images": [four], ...}
    whole, streamed = _both(monkeypatch, _write(tmp_path, text))
    _same(whole, streamed)
    assert whole.images.num_rows == 4


def _broken_variants() -> dict[str, bytes]:
    text = json.dumps(_members(), ensure_ascii=False)
    box = json.dumps(_box(3))[:-1]
    before_chunk = json.dumps(_box(5))  # the sixth annotation: a chunk of three starts after it
    cases = {f"cut at {k}/10": text[:len(text) * k // 10] for k in range(1, 10)}
    cases.update({
        "cut before the last brace": text[:-1], "cut inside the last list": text[:text.rindex("]")],
        "no comma between annotations": text.replace(box + "}, ", box + "} "),
        "comma before a brace": text.replace(box + "}", box + ",}"),
        "no comma before a chunk": text.replace(before_chunk + ", ", before_chunk + " "),
        "two commas before a chunk": text.replace(before_chunk + ", ", before_chunk + ", , "),
        "no comma and a bad value before a chunk": text.replace(before_chunk + ", ", before_chunk[:-1] + "x} "),
        "no colon": text.replace('"image_id": 2', '"image_id" 2', 1),
        "bracket closed by a brace": text.replace('"bbox": [1, 2, 6, 4]', '"bbox": [1, 2, 6, 4}', 1),
        "a bracket too many": text.replace('"bbox": [1, 2, 6, 4]', '"bbox": [1, 2, 6, 4]]', 1),
        "a list closed by a brace": text.replace("}]", "}}", 1),
        "extra data": text + " x", "a second object": text + "{}", "top level closed by a bracket": text[:-1] + "]",
        "a comma first": "{, " + text[1:], "a comma last": text[:-1] + ", }", "two commas": text.replace(", ", ", , ", 1),
        "a key without a value": text[:-1] + ', "x"}', "two values": text.replace('], "categories"', '] 5, "categories"'),
        "bad literal": text.replace('"iscrowd": 0', '"iscrowd": fals', 1), "only a brace": "{",
        "a stray backslash": text.replace('"iscrowd": 0', '"iscrowd": \\0', 1), "no top level": "  x",
        "a list at the top": "[1, 2]", "empty": " \n ", "an empty object": "{}",
        "NaN and a huge integer": text.replace('"iscrowd": 0', '"area": NaN, "iscrowd": 0', 1).replace(
            '"id": 5,', f'"id": {10 ** 30},'),
        "lines": json.dumps(_members(), indent=1, ensure_ascii=False)[:-30],
    })
    out = {name: t.encode() for name, t in cases.items()}
    out["not UTF-8"] = text.encode().replace(b"x, [y]", b"x, \xff[y]")
    out["byte-order mark"] = b"\xef\xbb\xbf" + text.encode()
    return out


@pytest.mark.parametrize("case", list(_broken_variants()))
def test_malformed_json_is_the_same_error_at_the_same_line_and_column(monkeypatch, tmp_path, case):
    """Whatever breaks the JSON — a cut, a missing or stray comma, an unmatched bracket, extra
    data — the streamed read says what json says, at the same line and column of the file."""
    monkeypatch.setattr(coco_stream, "BLOCK", 16)
    root = _write(tmp_path, _broken_variants()[case])
    whole, streamed = _both(monkeypatch, root, annotations=root / "annotations" / "instances.json")
    _same(whole, streamed)
    assert isinstance(whole, AnnotationError) == (case not in ("NaN and a huge integer", "byte-order mark"))


def test_a_big_file_in_utf16_is_refused_with_the_fix(monkeypatch, tmp_path):
    """The stream reads UTF-8 (every byte of a bracket or quote is one byte there); a UTF-16 file,
    which the whole-file parse reads, is refused in plain words rather than misread."""
    root = _write(tmp_path, json.dumps(_members()).encode("utf-16"))
    whole, streamed = _both(monkeypatch, root, annotations=root / "annotations" / "instances.json")
    assert not isinstance(whole, AnnotationError) and whole.annotations.num_rows == 11
    assert isinstance(streamed, AnnotationError)
    assert streamed.what.startswith("not UTF-8 text") and streamed.fix == "save the file as UTF-8"
