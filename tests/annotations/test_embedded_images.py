"""labelme files whose image exists only as base64 imageData (issue 10 item 9): the decoded
bytes become a real file of the version, so checkout, export and a re-snapshot all see it."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from lensvault.annotations import load
from lensvault.annotations.importers.labelme import embedded_bytes
from lensvault.errors import AnnotationError

from .conftest import BCCD

JPEG = BCCD / "BCCD" / "JPEGImages" / "BloodImage_00000.jpg"


def _png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.open(BCCD / "BCCD" / "JPEGImages" / "BloodImage_00001.jpg").save(buf, format="PNG")
    return buf.getvalue()


def _labelme_examples(root: Path) -> dict[str, bytes]:
    """Files shaped like labelme's own examples: the tutorial's old-format file (no version, no
    shape_type, imagePath naming the JSON itself, the JPEG in imageData) and a labelme 5 file whose
    image was never copied along. Returns image key → the bytes the version must hold."""
    folder = root / "data_annotated"
    folder.mkdir(parents=True)
    jpeg = JPEG.read_bytes()
    (folder / "apc2016_obj3.json").write_text(json.dumps({
        "shapes": [{"label": "shelf", "line_color": None, "fill_color": None,
                    "points": [[7.9, 79.8], [171.9, 413.8], [568.9, 432.8], [581.9, 109.8]]}],
        "lineColor": [0, 255, 0, 128], "fillColor": [255, 0, 0, 128],
        "imagePath": "apc2016_obj3.json", "imageData": base64.b64encode(jpeg).decode()}, indent=2))
    png = _png_bytes()
    (folder / "2011_000003.json").write_text(json.dumps({
        "version": "5.4.1", "flags": {}, "imagePath": "2011_000003.png", "imageHeight": 480, "imageWidth": 640,
        "imageData": base64.b64encode(png).decode(),
        "shapes": [{"label": "person", "points": [[10, 10], [50, 90]], "shape_type": "rectangle", "flags": {},
                    "group_id": None, "description": ""}]}))
    return {"data_annotated/apc2016_obj3.jpg": jpeg, "data_annotated/2011_000003.png": png}


def test_embedded_images_import_at_the_path_labelme_would_use(tmp_path):
    expected = _labelme_examples(tmp_path)
    aset = load(tmp_path)
    assert aset.source_format == "labelme"
    rows = {r["path"]: r for r in aset.images.to_pylist()}
    assert set(rows) == set(expected)
    assert (rows["data_annotated/apc2016_obj3.jpg"]["width"], rows["data_annotated/apc2016_obj3.jpg"]["height"]) == (640, 480)
    assert {k: e.sha256 for k, e in aset.embedded.items()} == {k: hashlib.sha256(v).hexdigest()
                                                              for k, v in expected.items()}
    assert "2 stored in their JSON as imageData" in aset.description
    assert not [f for f in aset.findings if f.code == "missing-image"]
    assert embedded_bytes(aset.embedded["data_annotated/2011_000003.png"]) == expected["data_annotated/2011_000003.png"]


def test_a_real_image_file_wins_over_imagedata(tmp_path):
    _labelme_examples(tmp_path)
    (tmp_path / "data_annotated" / "apc2016_obj3.jpg").write_bytes(
        (BCCD / "BCCD" / "JPEGImages" / "BloodImage_00002.jpg").read_bytes())
    aset = load(tmp_path)
    assert list(aset.embedded) == ["data_annotated/2011_000003.png"]


def test_snapshot_checkout_export_round_trip(vault, tmp_path):
    src = tmp_path / "src"
    expected = _labelme_examples(src)
    ds = vault.snapshot("shelves", src, format="auto", version="1.0.0")
    files = {r["path"]: r for r in ds.files().to_pylist()}
    for key, data in expected.items():
        assert files[key]["sha256"] == hashlib.sha256(data).hexdigest()
        assert files[key]["size"] == len(data)
        assert vault.store.read_bytes(files[key]["sha256"]) == data
    assert files["data_annotated/2011_000003.png"]["media_type"] == "image/png"
    images = {r["path"]: r["sha256"] for r in ds.images().to_pylist()}
    assert images == {k: hashlib.sha256(v).hexdigest() for k, v in expected.items()}
    assert ds.manifest().source["embedded_images"] == sorted(expected)
    assert not any((src / k).exists() for k in expected)  # the source folder is never written to

    out = tmp_path / "checkout"
    vault.checkout("shelves@1.0.0", out)
    for key, data in expected.items():
        assert (out / key).read_bytes() == data

    exported = tmp_path / "coco"
    vault.export("shelves@1.0.0", exported, format="coco")
    doc = json.loads(next((exported / "annotations").glob("*.json")).read_text())
    for image in doc["images"]:
        assert (exported / image["file_name"]).read_bytes() == expected[image["file_name"]]

    # The checkout holds real files now: snapshotting it gives the same content.
    again = vault.snapshot("shelves-copy", out, format="auto", version="1.0.0")
    assert again.snapshot_id == ds.snapshot_id


def test_broken_imagedata_is_a_located_error_or_a_bad_image(tmp_path):
    doc = {"version": "5.4.1", "imagePath": "x.jpg", "imageData": "!!!not base64!!!", "shapes": []}
    (tmp_path / "x.json").write_text(json.dumps(doc))
    with pytest.raises(AnnotationError) as info:
        load(tmp_path)
    assert info.value.where.startswith("x.json")
    doc["imageData"] = base64.b64encode(b"just text, not an image").decode()
    (tmp_path / "x.json").write_text(json.dumps(doc))
    with pytest.raises(AnnotationError) as info:
        load(tmp_path)
    assert info.value.details["findings"][0]["code"] == "unreadable-image"
    assert load(tmp_path, on_bad_image="skip").images.num_rows == 0


def test_a_changed_file_between_import_and_store_is_refused(tmp_path):
    _labelme_examples(tmp_path)
    aset = load(tmp_path)
    path = tmp_path / "data_annotated" / "2011_000003.json"
    doc = json.loads(path.read_text())
    doc["imageData"] = base64.b64encode(JPEG.read_bytes()).decode()
    path.write_text(json.dumps(doc))
    from lensvault.errors import InputError

    with pytest.raises(InputError) as info:
        embedded_bytes(aset.embedded["data_annotated/2011_000003.png"])
    assert "changed while it was being snapshotted" in info.value.what
