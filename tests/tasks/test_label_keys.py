"""Image labels held in a field of another format, read when told which: a COCO image field or
attribute (``--label-key KEY``), labelme's true ``flags`` (``--label-key flags``). Import, the
refusals, the export round trip (COCO writes them back under the key; labels.csv too), diff and
bump, ``dataset fix`` and VisionDataset's ``target["labels"]``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lensvault.annotations import load
from lensvault.errors import AnnotationError, LensVaultError

BCCD = Path(__file__).resolve().parents[1] / "data" / "bccd" / "BCCD" / "JPEGImages"
SOURCES = sorted(BCCD.glob("*.jpg"))[:4]


def _labels_of(aset) -> list[tuple[str, str]]:
    return sorted((r["image"], aset.classes.name_of(r["class_id"])) for r in aset.annotations.to_pylist()
                  if r["kind"] == "label")


def _coco(root: Path, fields: list[dict]) -> Path:
    """Four BCCD images in a COCO file, each image entry updated with ``fields[i]``, one box on the first."""
    (root / "images").mkdir(parents=True)
    images = []
    for i, p in enumerate(SOURCES):
        shutil.copyfile(p, root / "images" / f"im{i}.jpg")
        images.append({"id": i + 1, "file_name": f"images/im{i}.jpg", "width": 640, "height": 480, **fields[i]})
    doc = {"images": images, "categories": [{"id": 1, "name": "RBC"}, {"id": 3, "name": "indoor"}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40], "iscrowd": 0}]}
    (root / "annotations.json").write_text(json.dumps(doc))
    return root


FIELDS = [{"scene": "indoor", "camera": "a"},
          {"attributes": {"scene": ["outdoor", "night"], "blur": False}},
          {"scene": None},
          {"scene": {"indoor": True, "night": True, "outdoor": False}}]


def test_coco_label_key_reads_fields_and_attributes(tmp_path):
    src = _coco(tmp_path / "c", FIELDS)
    aset = load(src, format="coco", annotations=src / "annotations.json", label_key="scene")
    assert _labels_of(aset) == [("images/im0.jpg", "indoor"), ("images/im1.jpg", "night"),
                                ("images/im1.jpg", "outdoor"), ("images/im3.jpg", "indoor"),
                                ("images/im3.jpg", "night")]
    # a category of the file keeps its id; label names that are no category get ids after the highest
    assert aset.classes.names == ("RBC", "indoor", "night", "outdoor") and aset.classes.ids == (1, 3, 4, 5)
    assert sorted(f.message for f in aset.findings if f.code == "unknown-class") == [
        "image label 'night' is not a category; given id 4", "image label 'outdoor' is not a category; given id 5"]
    label = next(r for r in aset.annotations.to_pylist() if r["kind"] == "label")
    assert (label["x"], label["y"], label["w"], label["h"]) == (0, 0, 640, 480)
    tags = {r["path"]: json.loads(r["tags"]) for r in aset.images.to_pylist()}
    assert tags["images/im0.jpg"] == {"camera": "a"}  # the label field left the tags, the rest stayed
    assert tags["images/im1.jpg"] == {"blur": False}
    assert "image labels from 'scene'" in aset.description and "1 annotation" in aset.description
    # not told: the field stays a tag, no labels (as before)
    plain = load(src, format="coco", annotations=src / "annotations.json")
    assert _labels_of(plain) == [] and json.loads(plain.images.to_pylist()[0]["tags"])["scene"] == "indoor"


@pytest.mark.parametrize(("value", "where"), [(5, "images[0].scene"), ([["a"]], "images[0].scene"),
                                              ({"a": "yes"}, "images[0].scene"), ("  ", "images[0].scene")])
def test_coco_label_field_of_the_wrong_type_is_located(tmp_path, value, where):
    src = _coco(tmp_path / "c", [{"scene": value}, {}, {}, {}])
    with pytest.raises(AnnotationError) as e:
        load(src, format="coco", annotations=src / "annotations.json", label_key="scene")
    assert e.value.details["findings"][0]["code"] == "bad-value"
    assert where in str(e.value)


def _labelme(root: Path, flags: list[dict], shapes: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i, (p, f) in enumerate(zip(SOURCES, flags)):
        shutil.copyfile(p, root / f"im{i}.jpg")
        doc = {"version": "5.4.1", "flags": f, "imagePath": f"im{i}.jpg", "imageData": None,
               "imageHeight": 480, "imageWidth": 640,
               "shapes": [{"label": "RBC", "points": [[10, 10], [60, 60]], "shape_type": "rectangle",
                           "flags": {}, "group_id": None}] if shapes else []}
        (root / f"im{i}.json").write_text(json.dumps(doc))
    return root


FLAGS = [{"cat": True, "dog": False}, {"cat": True, "dog": True}, {"cat": False, "dog": False}, {"dog": True}]


def test_labelme_true_flags_are_labels_when_told(tmp_path):
    src = _labelme(tmp_path / "l", FLAGS)
    aset = load(src, format="labelme", label_key="flags")
    assert _labels_of(aset) == [("im0.jpg", "cat"), ("im1.jpg", "cat"), ("im1.jpg", "dog"), ("im3.jpg", "dog")]
    assert aset.classes.names == ("RBC", "cat", "dog")
    assert all(r["tags"] == "{}" for r in aset.images.to_pylist())  # flags are labels now, not tags
    assert {r["kind"] for r in aset.annotations.to_pylist()} == {"bbox", "label"}
    assert "4 image labels from flags" in aset.description
    untold = load(src, format="labelme")
    assert _labels_of(untold) == [] and json.loads(untold.images.to_pylist()[0]["tags"]) == FLAGS[0]
    with pytest.raises(AnnotationError, match='keep image labels in "flags"'):
        load(src, format="labelme", label_key="scene")
    (src / "im2.json").write_text((src / "im2.json").read_text().replace('"dog": false', '"dog": "maybe"'))
    with pytest.raises(AnnotationError, match="flags"):
        load(src, format="labelme", label_key="flags")


def test_label_key_for_a_format_without_fields_is_refused(tmp_path):
    src = tmp_path / "f"
    (src / "RBC").mkdir(parents=True)
    shutil.copyfile(SOURCES[0], src / "RBC" / "a.jpg")
    with pytest.raises(AnnotationError, match="--label-key 'x' does not apply to imagefolder"):
        load(src, format="imagefolder", label_key="x")


def _lv(vault, *args):
    return subprocess.run([sys.executable, "-m", "lensvault.cli.main", "--vault", str(vault.root), *map(str, args)],
                          capture_output=True, text=True)


def test_coco_labels_round_trip_through_export(vault, tmp_path):
    src = _coco(tmp_path / "c", FIELDS)
    v1 = vault.snapshot("scenes", src, format="coco", annotations=src / "annotations.json", label_key="scene",
                        version="1.0.0")
    assert vault.dataset(v1.ref).manifest().source["label_key"] == "scene"
    first = load(src, format="coco", annotations=src / "annotations.json", label_key="scene")
    vault.export(v1.ref, tmp_path / "out", format="coco")
    doc = json.loads(next((tmp_path / "out" / "annotations").glob("*.json")).read_text())
    by_name = {im["file_name"]: im for im in doc["images"]}
    assert by_name["images/im1.jpg"]["scene"] == ["outdoor", "night"] and "scene" not in by_name["images/im2.jpg"]
    assert [a["category_id"] for a in doc["annotations"]] == [1]  # labels are no objects
    again = load(tmp_path / "out", format="coco", label_key="scene")
    assert _labels_of(again) == _labels_of(first)
    # and through the label file
    vault.export(v1.ref, tmp_path / "csv", format="labels")
    assert _labels_of(load(tmp_path / "csv", format="labels")) == _labels_of(first)


def test_labelme_flags_version_diff_bump_fix_and_targets(vault, tmp_path):
    src = _labelme(tmp_path / "l", FLAGS, shapes=False)
    v1 = vault.snapshot("pets", src, format="labelme", label_key="flags", version="1.0.0")
    # through the COCO export under "flags" and back
    vault.export(v1.ref, tmp_path / "out", format="coco")
    assert _labels_of(load(tmp_path / "out", format="coco", label_key="flags")) == _labels_of(
        load(src, format="labelme", label_key="flags"))
    # a flag fixed: the labels changed, a PATCH; the diff speaks of image labels
    (src / "im0.json").write_text((src / "im0.json").read_text().replace('"cat": true, "dog": false',
                                                                           '"cat": false, "dog": true'))
    v2 = vault.snapshot("pets", src, format="labelme", label_key="flags", bump="auto")
    assert v2.ref == "pets@1.0.1"
    diff = vault.compare_datasets(v1.ref, v2.ref).to_dict()
    assert diff["annotations"]["counts"]["relabeled"] == 1 and diff["annotations"]["unit"] == "image label"
    assert "1 image label changed in 1 image (1 relabeled)" in diff["summary"]
    assert diff["images"]["retagged"] == []
    # dataset fix reads the corrected file with the same key
    fixed = tmp_path / "fixed"
    fixed.mkdir()
    (fixed / "im2.json").write_text((src / "im2.json").read_text().replace('"cat": false', '"cat": true'))
    r = _lv(vault, "dataset", "fix", v2.ref, "--annotations", fixed, "--json")
    assert r.returncode == 0, r.stderr
    v3 = vault.dataset("pets@1.0.2")
    rows = [r for r in v3.annotations().to_pylist() if r["image"] == "im2.jpg"]
    assert [(r["kind"], v3.class_map().name_of(r["class_id"])) for r in rows] == [("label", "cat")]
    from lensvault.torch import VisionDataset  # numpy targets without torch

    ds = VisionDataset(v3)
    by_path = {ds.target(i)["path"]: ds.target(i) for i in range(len(ds))}
    cm = v3.class_map()
    assert sorted(int(x) for x in by_path["im1.jpg"]["labels"]) == sorted([cm.id_of("cat"), cm.id_of("dog")])
    assert len(by_path["im0.jpg"]["boxes"]) == 0


def test_cli_label_key(vault, tmp_path):
    src = _coco(tmp_path / "c", FIELDS)
    r = _lv(vault, "dataset", "snapshot", "scenes", src, "--format", "coco", "--annotations",
            src / "annotations.json", "--label-key", "scene", "--version", "1.0.0", "--json")
    assert r.returncode == 0, r.stderr
    assert "5 image labels from 'scene'" in json.dumps(json.loads(r.stdout))
    bad = _lv(vault, "dataset", "snapshot", "other", src, "--format", "voc", "--label-key", "scene",
              "--version", "1.0.0")
    assert bad.returncode != 0 and "does not apply to voc" in bad.stderr and "Traceback" not in bad.stderr
    assert [d["name"] for d in json.loads(_lv(vault, "dataset", "list", "--json").stdout)] == ["scenes"]
    with pytest.raises(LensVaultError):
        vault.snapshot("other", src, format="yolo", label_key="scene", version="1.0.0")
