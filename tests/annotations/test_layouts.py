"""Real-world layouts import with --format auto and with --format alone: formats are found by
content, and every label finds the image it means (issue 10, items 7 and 8)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lensvault.annotations import detect, load
from lensvault.errors import AnnotationError

from .conftest import BCCD, SAMPLES

BCCD_ROOT = BCCD / "BCCD"


def _bccd_boxes() -> dict[str, list[tuple]]:
    """BCCD's boxes by image file name, as imported from its original layout."""
    aset = load(BCCD)
    out: dict[str, list[tuple]] = {}
    for row in aset.annotations.to_pylist():
        out.setdefault(row["image"].rsplit("/", 1)[-1], []).append(
            (row["class_id"], row["x"], row["y"], row["w"], row["h"]))
    return out


def _boxes(aset) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = {}
    for row in aset.annotations.to_pylist():
        out.setdefault(row["image"].rsplit("/", 1)[-1], []).append(
            (row["class_id"], row["x"], row["y"], row["w"], row["h"]))
    return out


def _assert_paths_exist(root: Path, aset) -> None:
    """The rule of item 8: no recorded image path is missing while the real file is there."""
    for path in aset.images.column("path").to_pylist():
        assert (root / path).is_file(), path


def _kaggle(tmp_path: Path, ann_dir: str, img_dir: str = "images") -> Path:
    """Kaggle-style VOC: <ann_dir>/*.xml + <img_dir>/*.jpg; <folder> says JPEGImages (stale)."""
    root = tmp_path / f"kaggle_{ann_dir}"
    shutil.copytree(BCCD_ROOT / "Annotations", root / ann_dir)
    shutil.copytree(BCCD_ROOT / "JPEGImages", root / img_dir)
    return root


@pytest.mark.parametrize("ann_dir", ["annotations", "annots", "xml", "labels", "Annotations"])
def test_kaggle_voc_layouts_import_by_auto_and_by_format_alone(tmp_path, ann_dir):
    root = _kaggle(tmp_path, ann_dir)
    expected = _bccd_boxes()
    found = detect(root)
    assert found.format == "voc" and f"{ann_dir}/ (47 XML files)" in found.description
    for fmt in ("auto", "voc"):
        aset = load(root, format=fmt)
        assert aset.source_format == "voc"
        assert aset.images.num_rows == 47
        assert set(aset.images.column("path").to_pylist()) == {
            f"images/{p.name}" for p in (BCCD_ROOT / "JPEGImages").iterdir()}
        assert _boxes(aset) == expected
        assert "missing-image" not in {f.code for f in aset.findings}
        _assert_paths_exist(root, aset)


def test_xml_beside_the_images_in_one_folder(tmp_path):
    root = tmp_path / "flat"
    root.mkdir()
    for p in (BCCD_ROOT / "Annotations").iterdir():
        shutil.copy(p, root / p.name)
    for p in (BCCD_ROOT / "JPEGImages").iterdir():
        shutil.copy(p, root / p.name)
    aset = load(root, format="voc")
    assert aset.images.num_rows == 47 and _boxes(aset) == _bccd_boxes()
    assert detect(root).format == "voc"
    _assert_paths_exist(root, aset)


def test_vocdevkit_two_levels_down_keeps_its_split_files(tmp_path):
    root = tmp_path / "download"
    shutil.copytree(BCCD_ROOT, root / "VOCdevkit" / "VOC2012")
    aset = load(root)
    assert aset.images.num_rows == 47
    original = load(BCCD)
    assert {k: len(v) for k, v in aset.splits.items()} == {k: len(v) for k, v in original.splits.items()}
    assert aset.images.column("path").to_pylist()[0].startswith("VOCdevkit/VOC2012/JPEGImages/")


def test_folder_tag_then_unique_name_anywhere(tmp_path):
    root = tmp_path / "ds"
    names = sorted(p.name for p in (BCCD_ROOT / "JPEGImages").iterdir())[:4]
    (root / "meta").mkdir(parents=True)
    for i, name in enumerate(names):
        xml = (BCCD_ROOT / "Annotations" / name.replace(".jpg", ".xml")).read_text()
        if i == 0:  # <folder> names the folder the image is in
            xml = xml.replace("<folder>JPEGImages</folder>", "<folder>pics</folder>")
            target = root / "pics" / name
        else:  # nowhere the XML says: found by its unique name
            target = root / "raw" / f"batch{i}" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(BCCD_ROOT / "JPEGImages" / name, target)
        (root / "meta" / name.replace(".jpg", ".xml")).write_text(xml)
    aset = load(root, format="voc")
    paths = aset.images.column("path").to_pylist()
    assert paths == [f"pics/{names[0]}"] + [f"raw/batch{i}/{n}" for i, n in enumerate(names[1:], 1)]
    assert not [f for f in aset.findings if f.code == "missing-image"]
    _assert_paths_exist(root, aset)


def test_an_ambiguous_name_is_a_located_error_naming_the_candidates(tmp_path):
    root = _kaggle(tmp_path, "annotations", img_dir="raw/a")
    (root / "raw" / "b").mkdir()
    shutil.copy(BCCD_ROOT / "JPEGImages" / "BloodImage_00001.jpg", root / "raw" / "b" / "BloodImage_00001.jpg")
    with pytest.raises(AnnotationError) as info:
        load(root, format="voc")
    err = info.value
    assert err.where == "annotations/BloodImage_00001.xml, filename"
    assert "raw/a/BloodImage_00001.jpg" in err.what and "raw/b/BloodImage_00001.jpg" in err.what
    assert err.details["findings"][0]["code"] == "ambiguous-image"


def test_filename_without_its_file_uses_the_image_named_like_the_xml_with_a_warning(tmp_path):
    root = _kaggle(tmp_path, "annotations")
    xml = root / "annotations" / "BloodImage_00003.xml"
    xml.write_text(xml.read_text().replace("BloodImage_00003.jpg", "scan_0003.png"))
    aset = load(root)
    (finding,) = [f for f in aset.findings if f.code == "filename-mismatch"]
    assert finding.file == "annotations/BloodImage_00003.xml" and "images/BloodImage_00003.jpg" in finding.message
    _assert_paths_exist(root, aset)


def test_names_never_lead_outside_the_root(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.copy(BCCD_ROOT / "JPEGImages" / "BloodImage_00000.jpg", outside / "secret.jpg")
    root = tmp_path / "ds"
    (root / "annotations").mkdir(parents=True)
    xml = (BCCD_ROOT / "Annotations" / "BloodImage_00000.xml").read_text()
    (root / "annotations" / "a.xml").write_text(
        xml.replace("<filename>BloodImage_00000.jpg", "<filename>../../elsewhere/secret.jpg")
           .replace("<folder>JPEGImages", f"<folder>{outside}"))
    aset = load(root, format="voc")
    (_finding,) = [f for f in aset.findings if f.code == "missing-image"]
    assert aset.images.column("path").to_pylist() == ["annotations/secret.jpg"]
    # a symlinked image that leads out is refused, not read
    (root / "images").mkdir()
    (root / "images" / "secret.jpg").symlink_to(outside / "secret.jpg")
    with pytest.raises(AnnotationError) as info:
        load(root, format="voc")
    assert info.value.details["findings"][0]["code"] == "outside-root"


def test_windows_and_absolute_filenames_resolve_by_their_last_part(tmp_path):
    root = _kaggle(tmp_path, "annotations")
    xml = root / "annotations" / "BloodImage_00000.xml"
    xml.write_text(xml.read_text().replace("<filename>BloodImage_00000.jpg",
                                           "<filename>C:\\Users\\me\\data\\BloodImage_00000.jpg"))
    aset = load(root)
    assert "images/BloodImage_00000.jpg" in aset.images.column("path").to_pylist()
    assert not [f for f in aset.findings if f.code in {"missing-image", "filename-mismatch"}]


def test_several_formats_are_all_named_with_counts_and_how_to_pick_another(tmp_path):
    root = _kaggle(tmp_path, "annotations")
    # a YOLO export of the same images beside the VOC files, and a COCO file of any name
    yolo = load(SAMPLES / "yolo_dataset/labels")
    assert yolo.images.num_rows
    (root / "labels").mkdir()
    for p in sorted((root / "images").iterdir())[:3]:
        (root / "labels" / f"{p.stem}.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    (root / "classes.txt").write_text("cell\n")
    (root / "exports").mkdir()
    shutil.copy(SAMPLES / "coco_dataset/coco_instances/annotations/instances_train.json", root / "exports" / "x.json")
    found = detect(root)
    # a COCO file found only by content comes after the per-image formats
    assert [c.format for c in found.found] == ["voc", "yolo", "coco"]
    assert found.format == "voc" and found.description.startswith("Pascal VOC: annotations/ (47 XML files) — ")
    assert "chosen over: YOLO: labels/ (3 label files) with classes.txt (to use it: --format yolo)" in found.description
    assert "COCO: exports/x.json (to use it: --format coco --annotations exports/x.json)" in found.description
    assert found.to_dict()["found"][0] == {"format": "voc", "description": "Pascal VOC: annotations/ (47 XML files)",
                                          "files": 47, "annotations": None}
    aset = load(root)
    assert aset.source_format == "voc" and "chosen over: YOLO" in aset.description
    # the hints work as printed
    assert load(root, format="yolo").source_format == "yolo"
    assert load(root, format="coco", annotations=root / "exports/x.json").source_format == "coco"
    # a COCO file where COCO files are (the root, annotations/instances_*.json) is chosen first
    shutil.copy(root / "exports" / "x.json", root / "coco.json")
    assert detect(root).format == "coco"


def test_coco_json_of_any_name_is_found_by_content_and_by_format_alone(tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(SAMPLES / "coco_dataset/coco_instances/images", root / "images")
    (root / "meta").mkdir()
    shutil.copy(SAMPLES / "coco_dataset/coco_instances/annotations/instances_train.json", root / "meta" / "gt.json")
    found = detect(root)
    assert found.format == "coco" and found.annotations == root / "meta" / "gt.json"
    for fmt in ("auto", "coco"):
        aset = load(root, format=fmt)
        assert aset.source_format == "coco" and aset.images.num_rows == 1 and aset.annotations.num_rows


def test_detection_reads_only_the_head_of_a_huge_json(tmp_path):
    root = tmp_path / "ds"
    root.mkdir()
    head = b'{"info": {}, "images": [{"id": 1, "file_name": "a.jpg", "width": 4, "height": 4}'
    with open(root / "huge.json", "wb") as f:
        f.write(head)
        f.write(b" " * (5 << 20))  # not valid JSON: a whole-file parse would fail
        f.write(b"this is not JSON")
    found = detect(root)
    assert found.format == "coco" and "huge.json (5.2 MB)" in found.description


def test_old_labelme_files_with_long_shape_lists_are_detected(tmp_path, make_image):
    """labelme before 4.0 wrote no "version" and put imagePath after the shapes."""
    make_image(tmp_path / "a.jpg", 40, 30)
    shapes = [{"label": "cell", "line_color": None, "fill_color": None,
               "points": [[1.5 + i % 30, 1.25], [2.5, 8.75], [9.125, 3.5]]} for i in range(600)]
    doc = {"shapes": shapes, "lineColor": [0, 255, 0, 128], "fillColor": [255, 0, 0, 128], "imagePath": "a.jpg",
           "imageData": None}
    (tmp_path / "a.json").write_text(json.dumps(doc, indent=2))
    assert (tmp_path / "a.json").stat().st_size > 65536
    assert detect(tmp_path).format == "labelme"
    aset = load(tmp_path)
    assert aset.annotations.num_rows == 600 and set(aset.annotations.column("kind").to_pylist()) == {"polygon"}


def test_voc_xml_in_a_labels_folder_is_not_taken_for_yolo(tmp_path):
    root = _kaggle(tmp_path, "labels")
    (root / "classes.txt").write_text("RBC\nWBC\nPlatelets\n")
    assert detect(root).format == "voc"


def test_mit_labelme_xml_is_still_named_as_unsupported():
    with pytest.raises(AnnotationError) as info:
        load(SAMPLES / "labelme_dataset")
    assert "MIT LabelMe XML" in info.value.what
    with pytest.raises(AnnotationError):
        load(SAMPLES / "labelme_dataset", format="voc")


def _split_by_name(aset) -> dict[str, str | None]:
    return {p.rsplit("/", 1)[-1]: s for p, s in zip(aset.images.column("path").to_pylist(),
                                                     aset.images.column("split").to_pylist())}


@pytest.mark.parametrize("where", ["outside", "inside-elsewhere", "single-file"])
def test_voc_with_annotations_keeps_the_split_files_of_the_images_voc_root(tmp_path, where):
    """--annotations naming XML that is not beside ImageSets/Main (a corrected copy outside SRC, a
    folder elsewhere in SRC, one file) still gets each image's split from its VOC root's split files,
    as the default mode does; a VOCdevkit two levels down included."""
    root = tmp_path / "src"
    shutil.copytree(BCCD_ROOT, root / "VOCdevkit" / "VOC2007")
    expected = _split_by_name(load(root, format="voc"))
    assert set(expected.values()) == {"train", "val", "test"}
    if where == "outside":
        ann = tmp_path / "corrected"
    elif where == "inside-elsewhere":
        ann = root / "fixes" / "xml"
    else:
        ann = tmp_path / "one" / "BloodImage_00003.xml"
    if where == "single-file":
        ann.parent.mkdir()
        shutil.copyfile(root / "VOCdevkit" / "VOC2007" / "Annotations" / ann.name, ann)
    else:
        shutil.copytree(root / "VOCdevkit" / "VOC2007" / "Annotations", ann)
    aset = load(root, format="voc", annotations=ann)
    got = _split_by_name(aset)
    if where == "single-file":
        assert got == {"BloodImage_00003.jpg": expected["BloodImage_00003.jpg"]}
    else:
        assert got == expected
    _assert_paths_exist(root, aset)


COCO_SPLIT_LAYOUTS = {
    # name: [(JSON path, image folder, the split it stands for)]; each JSON describes two images
    "split-named-files-at-the-root": [("train.json", "", "train"), ("val.json", "", "val"),
                                      ("test.json", "", "test")],
    "split-named-files-in-annotations": [("annotations/train.json", "images", "train"),
                                         ("annotations/valid.json", "images", "val")],
    "roboflow": [("train/_annotations.coco.json", "train", "train"), ("valid/_annotations.coco.json", "valid", "val"),
                 ("test/_annotations.coco.json", "test", "test")],
    "roboflow-one-level-down": [("export/train/_annotations.coco.json", "export/train", "train"),
                                ("export/valid/_annotations.coco.json", "export/valid", "val")],
    "split-folders-any-name": [("train/labels.json", "train", "train"), ("val/labels.json", "val", "val")],
    "task-files": [("annotations/instances_train.json", "images/train", "train"),
                   ("annotations/instances_val.json", "images/val", "val")],
}


def _coco_split_layout(root: Path, layout) -> dict[str, str]:
    """Write the layout; return image file name → the split its JSON stands for."""
    from PIL import Image

    expected = {}
    for jp, folder, split in layout:
        images, anns = [], []
        for k in range(2):
            name = f"{split}_{k}.png"
            (root / folder).mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (20, 10), (len(expected), 0, 0)).save(root / folder / name)
            images.append({"id": k + 1, "file_name": name, "width": 20, "height": 10})
            anns.append({"id": k + 1, "image_id": k + 1, "category_id": 1, "bbox": [1, 1, 5, 5], "iscrowd": 0})
            expected[name] = split
        (root / jp).parent.mkdir(parents=True, exist_ok=True)
        (root / jp).write_text(json.dumps({"images": images, "annotations": anns,
                                           "categories": [{"id": 1, "name": "a"}]}))
    return expected


@pytest.mark.parametrize("layout", sorted(COCO_SPLIT_LAYOUTS))
@pytest.mark.parametrize("fmt", ["auto", "coco"])
def test_coco_files_named_or_placed_for_their_split_give_that_split(tmp_path, layout, fmt):
    """train.json / valid.json / test.json, Roboflow's <split>/_annotations.coco.json (also one
    folder down), any COCO JSON in a split folder: every split is imported, each with its name."""
    root = tmp_path / "src"
    expected = _coco_split_layout(root, COCO_SPLIT_LAYOUTS[layout])
    aset = load(root, format=fmt)
    assert aset.source_format == "coco"
    assert _split_by_name(aset) == expected
    _assert_paths_exist(root, aset)
