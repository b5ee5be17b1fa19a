"""Ignore pixels and the background class of a masks import survive the whole loop: import →
snapshot → export (--format masks) → import again → semantic evaluation, on the mask samples in
tests/data (datumaro's common semantic segmentation layout, background_label "0" = "Void")."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lensvault.annotations import load
from lensvault.errors import AnnotationError

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "format-samples" / "common_semantic_segmentation_dataset"
BORDER = (224, 224, 192)  # the VOC border colour: ignore


def _sample(tmp_path: Path, name: str = "dataset") -> Path:
    """The sample with, in 0001's mask, pixel 0 ignored and pixel 1 background (Void)."""
    src = tmp_path / name
    shutil.copytree(SAMPLE / name, src)
    mask = src / "masks" / ("0001.png" if name == "dataset" else "gt_0001.png")
    px = np.array(Image.open(mask).convert("RGB"))
    px[0, 0], px[0, 1] = BORDER, (0, 0, 0)
    Image.fromarray(px).save(mask)
    return src


def _rows(aset_or_table) -> list[tuple]:
    table = getattr(aset_or_table, "annotations", aset_or_table)
    return sorted((r["image"].rsplit("/", 1)[-1], r["class_id"], r["rle"], r["iscrowd"], r["attributes"])
                  for r in table.to_pylist())


def test_ignore_pixels_become_a_crowd_region_of_the_background(tmp_path):
    aset = load(_sample(tmp_path), format="masks")
    assert aset.masks == {"background_class": 0, "ignore_index": 255}
    ignore = [r for r in aset.annotations.to_pylist() if r["iscrowd"]]
    assert len(ignore) == 1 and ignore[0]["image"] == "images/0001.png"
    assert (ignore[0]["class_id"], json.loads(ignore[0]["attributes"])) == (0, {"ignore": True})
    assert (ignore[0]["x"], ignore[0]["w"]) == (0, 1)  # the one pixel
    assert not any(r["class_id"] == 0 and not r["iscrowd"] for r in aset.annotations.to_pylist())  # Void: no object
    assert "ignore pixels (value 255) in 1 image" in aset.description


def test_background_label_and_ignore_index_options(tmp_path):
    src = tmp_path / "ids"
    (src / "images").mkdir(parents=True)
    (src / "masks").mkdir()
    Image.new("RGB", (4, 1)).save(src / "images" / "a.png")
    Image.fromarray(np.array([[0, 1, 7, 2]], dtype=np.uint8), "L").save(src / "masks" / "a.png")
    (src / "dataset_meta.json").write_text(json.dumps({"label_map": {"0": "sky", "1": "car", "2": "road"}}))
    with pytest.raises(AnnotationError, match="not in the class map"):  # 7 is no class, and not 255
        load(src, format="masks")
    aset = load(src, format="masks", ignore_index=7, background="sky")
    assert aset.masks == {"background_class": 0, "ignore_index": 7}
    assert [(r["class_id"], r["iscrowd"]) for r in aset.annotations.to_pylist()] == [(1, False), (2, False), (0, True)]
    with pytest.raises(AnnotationError, match="background class 'grass' is not in the class map"):
        load(src, format="masks", ignore_index=7, background="grass")
    with pytest.raises(AnnotationError, match="ignore index 1 is the id of class 'car'"):
        load(src, format="masks", ignore_index=1)
    with pytest.raises(AnnotationError, match="are for segmentation masks, not coco"):
        load(SAMPLE.parent / "coco_dataset" / "coco_instances", format="coco", ignore_index=7)
    # dataset_meta.json may say it too (the masks export writes it)
    (src / "dataset_meta.json").write_text(json.dumps({"label_map": {"0": "sky", "1": "car", "2": "road"},
                                                       "background_label": "0", "ignore_index": 7}))
    assert _rows(load(src, format="masks")) == _rows(aset)


def _predict(gt_version, dest: Path, *, on_ignore: int) -> Path:
    """Perfect predictions, except ``on_ignore`` on the ignored pixel."""
    from lensvault.annotations.painting import rasterize_ground_truth

    for im in gt_version.images().to_pylist():
        rows = [r for r in gt_version.annotations().to_pylist() if r["image"] == im["path"]]
        pixels = rasterize_ground_truth(im, rows, 0, 255)
        pixels[pixels == 255] = on_ignore
        out = dest / "images" / f"{Path(im['path']).stem}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels.astype(np.uint8), "L").save(out)
    return dest


def test_snapshot_export_reimport_and_semantic_eval(vault, tmp_path):
    src = _sample(tmp_path)
    v1 = vault.snapshot("seg", src, format="masks", version="1.0.0")
    ds = vault.dataset(v1.ref)
    assert ds.manifest().source["masks"] == {"background_class": 0, "ignore_index": 255}
    preds = _predict(ds, tmp_path / "preds", on_ignore=1)  # wrong on the ignored pixel: not scored
    res = vault.evaluate(dataset=v1.ref, split=None, predictions=preds, task="semantic-segmentation")
    assert res["counts"]["background_class"] == "Void"  # dataset_meta's background_label, not a name
    assert res["counts"]["pixels"] == 9  # 10 pixels, the ignored one not counted; Void's is
    assert res["overall"]["mIoU"] == 1.0 and res["per_class"]["Void"]["pixels"] == 1
    # the masks export writes the ignore index and the background, and reads back the same
    vault.export(v1.ref, tmp_path / "out", format="masks")
    meta = json.loads((tmp_path / "out" / "dataset_meta.json").read_text())
    assert (meta["background_label"], meta["ignore_index"]) == ("0", 255)
    colour = {(0, 0, 0): 0, (0, 128, 192): 3, (128, 64, 128): 5, BORDER: 255}
    source_mask = [[colour[tuple(int(v) for v in c)] for c in row]
                   for row in np.array(Image.open(src / "masks" / "0001.png").convert("RGB"))]
    assert np.array(Image.open(tmp_path / "out" / "masks" / "0001.png")).tolist() == source_mask
    again = load(tmp_path / "out", format="masks")
    assert _rows(again) == _rows(ds.annotations()) and again.masks == ds.manifest().source["masks"]
    v2 = vault.snapshot("seg2", tmp_path / "out", format="masks", version="1.0.0")
    res2 = vault.evaluate(dataset=v2.ref, split=None, predictions=preds, task="semantic-segmentation")
    assert (res2["overall"], res2["per_class"]) == (res["overall"], res["per_class"])
    # the ignore region is no object: the COCO, YOLO and VOC exports leave it out (background is none)
    vault.export(v1.ref, tmp_path / "coco", format="coco")
    coco = json.loads(next((tmp_path / "coco" / "annotations").glob("*.json")).read_text())
    assert [a for a in coco["annotations"] if a["category_id"] == 0 or a["iscrowd"]] == []
    vault.export(v1.ref, tmp_path / "voc", format="voc")
    assert "<name>Void</name>" not in "".join(p.read_text() for p in (tmp_path / "voc").rglob("*.xml"))


def test_fix_keeps_the_import_options(vault, tmp_path):
    src = tmp_path / "ids"
    (src / "images").mkdir(parents=True)
    (src / "masks").mkdir()
    Image.new("RGB", (4, 1)).save(src / "images" / "a.png")
    Image.fromarray(np.array([[0, 1, 7, 2]], dtype=np.uint8), "L").save(src / "masks" / "a.png")
    (src / "dataset_meta.json").write_text(json.dumps({"label_map": {"0": "sky", "1": "car", "2": "road"}}))
    v1 = vault.snapshot("ids", src, format="masks", version="1.0.0", ignore_index=7, background="sky")
    fixed = tmp_path / "fixed"
    (fixed / "masks").mkdir(parents=True)
    Image.fromarray(np.array([[0, 2, 7, 2]], dtype=np.uint8), "L").save(fixed / "masks" / "a.png")
    v2 = vault.fix(v1.ref, fixed)
    rows = vault.dataset(v2.ref).annotations().to_pylist()
    assert [(r["class_id"], r["iscrowd"]) for r in rows] == [(2, False), (0, True)]
    assert vault.dataset(v2.ref).manifest().source["masks"] == {"background_class": 0, "ignore_index": 7}


def test_a_masks_export_of_a_dataset_without_pixels_is_refused(vault, tmp_path):
    """Boxes carry no pixels: a masks export of a box-only version wrote every image as
    background with exit 0, dropping every annotation. Refused, with nothing written."""
    import shutil

    from lensvault.errors import UsageError
    from tests.vision.conftest import BCCD

    src = tmp_path / "voc"
    for sub in ("Annotations", "JPEGImages"):
        (src / sub).mkdir(parents=True)
    for stem in ("BloodImage_00000", "BloodImage_00001"):
        shutil.copyfile(BCCD / "Annotations" / f"{stem}.xml", src / "Annotations" / f"{stem}.xml")
        shutil.copyfile(BCCD / "JPEGImages" / f"{stem}.jpg", src / "JPEGImages" / f"{stem}.jpg")
    vault.snapshot("cells", src, version="1.0.0", format="voc")
    out = tmp_path / "out"
    with pytest.raises(UsageError, match="carry pixels") as e:
        vault.export("cells@1.0.0", out, format="masks")
    assert "coco" in e.value.fix and not out.exists()


def test_the_masks_export_keeps_splits_also_where_stems_repeat(tmp_path):
    """Splits travel in VOC's split lists: by stem, or by path where two images share a stem; any
    split name, not only VOC's."""
    from lensvault.annotations import export

    src = tmp_path / "src"
    for folder in ("images/day", "images/night"):
        (src / folder).mkdir(parents=True)
        Image.new("RGB", (3, 2)).save(src / folder / "a.png")
    (src / "masks" / "day").mkdir(parents=True)
    (src / "masks" / "night").mkdir(parents=True)
    for folder in ("day", "night"):
        Image.fromarray(np.array([[0, 1, 1], [0, 0, 1]], dtype=np.uint8), "L").save(src / "masks" / folder / "a.png")
    (src / "dataset_meta.json").write_text(json.dumps({"label_map": {"0": "sky", "1": "car"}, "background_label": "0"}))
    aset = load(src, format="masks")
    import pyarrow as pa

    splits = {"images/day/a.png": "train", "images/night/a.png": "holdout"}
    images = aset.images.set_column(aset.images.schema.get_field_index("split"), "split",
                                    pa.array([splits[p] for p in aset.images.column("path").to_pylist()]))
    aset = dataclasses.replace(aset, images=images)
    files = {p: src / p for p in splits}
    out = export(aset, files, tmp_path / "out", format="masks")
    lists = out / "ImageSets" / "Segmentation"
    assert (lists / "train.txt").read_text() == "images/day/a\n"  # two a.png: by path
    assert (lists / "holdout.txt").read_text() == "images/night/a\n"
    again = load(out, format="masks")
    assert dict(zip(again.images.column("path").to_pylist(), again.images.column("split").to_pylist())) == splits
    assert _rows(again) == _rows(aset)
