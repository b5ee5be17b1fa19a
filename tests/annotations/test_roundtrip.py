"""Export → import gives back the same images, classes, boxes and splits."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

import pyarrow as pa
import pytest

from lensvault.annotations import export, load
from lensvault.annotations.exporters._files import FlatNames
from lensvault.errors import AnnotationError, InputError

from .conftest import BCCD, SAMPLES
from .test_samples import EXPECTED

CASES = [SAMPLES / s for s in sorted(EXPECTED)] + [BCCD]
TOL = {"coco": 1e-6, "voc": 1e-6, "yolo": 1e-3}


def _files(src: Path, aset) -> dict[str, Path]:
    return {p: src / p for p in aset.images.column("path").to_pylist() if (src / p).is_file()}


def _by_image(aset) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for row in aset.annotations.to_pylist():
        out.setdefault(row["image"], []).append(row)
    return out


def _exported_name(fmt: str, original: str, flat: FlatNames) -> str:
    """Where the exporter puts an image, as the importer will name it."""
    if fmt == "coco":
        return original
    return PurePosixPath(flat(original)).stem  # yolo/voc: compared by file stem


def _key(fmt: str, path: str) -> str:
    return path if fmt == "coco" else PurePosixPath(path).stem


def assert_same(original, again, fmt: str) -> None:
    flat = FlatNames(original.images.column("path").combine_chunks())
    want_images = {_exported_name(fmt, im["path"], flat): im for im in original.images.to_pylist()}
    got_images = {_key(fmt, im["path"]): im for im in again.images.to_pylist()}
    assert set(got_images) == set(want_images)
    for key, im in want_images.items():
        got = got_images[key]
        assert (got["width"], got["height"], got["split"]) == (im["width"], im["height"], im["split"]), key
    if fmt == "coco":
        assert again.classes == original.classes
    else:
        assert again.classes.names == original.classes.names
    want, got = _by_image(original), _by_image(again)
    tol = TOL[fmt]
    for path, rows in want.items():
        other = got.get(_exported_name(fmt, path, flat)) or got.get(path) or []
        if fmt != "coco":
            other = got.get(next(p for p in got_images.values() if _key(fmt, p["path"]) ==
                                 _exported_name(fmt, path, flat))["path"], [])
        assert len(other) == len(rows), path
        for a, b in zip(rows, other):
            assert original.classes.name_of(a["class_id"]) == again.classes.name_of(b["class_id"])
            for k in ("x", "y", "w", "h"):
                assert b[k] == pytest.approx(a[k], abs=tol), (path, a["index"], k)
            if fmt == "coco":
                for k in ("polygon", "rle", "keypoints", "iscrowd", "attributes"):
                    assert b[k] == a[k], (path, a["index"], k)
                # COCO has one RLE segmentation: a semantic "mask" comes back as "rle".
                assert b["kind"] == {"mask": "rle"}.get(a["kind"], a["kind"])
            if fmt == "voc":
                for k in ("difficult", "truncated", "occluded"):
                    assert b[k] == a[k]


def _case_id(p: Path) -> str:
    return "bccd" if p == BCCD else str(p.relative_to(SAMPLES))


@pytest.mark.parametrize("fmt", ["coco", "yolo", "voc"])
@pytest.mark.parametrize("src", CASES, ids=_case_id)
def test_round_trip(src, fmt, tmp_path):
    original = load(src)
    files = _files(src, original)
    if fmt == "yolo" and min(original.images.column("width").to_pylist(), default=1) == 0:
        # voc_dataset2 has neither images nor sizes: YOLO cannot normalize its boxes.
        with pytest.raises(InputError, match="no known size"):
            export(original, files, tmp_path / "out", format=fmt)
        return
    dest = export(original, files, tmp_path / "out", format=fmt)
    again = load(dest)
    assert again.source_format == fmt
    assert_same(original, again, fmt)
    for path in files:  # every image we had was copied
        assert any(p.is_file() for p in dest.rglob(PurePosixPath(FlatNames(pa.array(list(files)))(path)).name)) \
            or (dest / path).is_file()


@pytest.mark.parametrize("src", CASES, ids=_case_id)
def test_pycocotools_loads_the_coco_export(src, tmp_path):
    from pycocotools.coco import COCO

    original = load(src)
    dest = export(original, _files(src, original), tmp_path / "out", format="coco")
    total = 0
    for path in sorted((dest / "annotations").glob("instances_*.json")):
        coco = COCO(str(path))
        total += len(coco.getAnnIds())
        for ann in coco.loadAnns(coco.getAnnIds()):
            if ann["segmentation"] and coco.imgs[ann["image_id"]]["width"]:
                assert coco.annToMask(ann).shape == (coco.imgs[ann["image_id"]]["height"],
                                                     coco.imgs[ann["image_id"]]["width"])
    assert total == original.annotations.num_rows


def test_export_one_split_and_link_callback(tmp_path):
    original = load(BCCD)
    linked = []

    def link(src: Path, dst: Path) -> None:
        linked.append(dst)
        dst.symlink_to(src)

    dest = export(original, _files(BCCD, original), tmp_path / "val", format="yolo", split="val", link=link)
    # The export's images are links to BCCD, outside it: read only where the caller trusts the
    # target (as the vault trusts its own store for a `checkout --link symlink` folder).
    with pytest.raises(AnnotationError) as info:
        load(dest)
    assert info.value.details["findings"][0]["code"] == "outside-root"
    again = load(dest, trusted=[BCCD])
    assert again.images.num_rows == 10 == len(linked)
    assert set(again.images.column("split").to_pylist()) == {"val"}
    assert all(p.is_symlink() for p in linked)
    config = (dest / "data.yaml").read_text()
    assert "val: images/val" in config and "train:" not in config


def test_unsplit_yolo_export_stays_unsplit(tmp_path):
    original = load(SAMPLES / "yolo_dataset/annotations")
    dest = export(original, _files(SAMPLES / "yolo_dataset/annotations", original), tmp_path / "o", format="yolo")
    again = load(dest)
    assert again.images.column("split").to_pylist() == [None]


def test_coco_export_writes_tags_and_reimports_them(tmp_path, make_image):
    root = tmp_path / "src"
    make_image(root / "img" / "a.jpg", 20, 10)
    doc = {"images": [{"id": 1, "file_name": "img/a.jpg", "width": 20, "height": 10, "time_of_day": "night",
                       "attributes": {"camera": "c1"}}],
           "categories": [{"id": 7, "name": "car"}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 7, "bbox": [1, 2, 3, 4], "iscrowd": 0}]}
    (root / "annotations").mkdir()
    (root / "annotations" / "instances_default.json").write_text(json.dumps(doc))
    original = load(root)
    assert original.images.column("tags").to_pylist() == ['{"camera":"c1","time_of_day":"night"}']
    again = load(export(original, {"img/a.jpg": root / "img/a.jpg"}, tmp_path / "out", format="coco"))
    assert again.images.column("tags").to_pylist() == original.images.column("tags").to_pylist()
    assert again.classes.ids == (7,)
