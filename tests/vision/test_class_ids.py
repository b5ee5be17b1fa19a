"""Adding a class never re-indexes existing ones: for formats that name classes without numbering
them (VOC, labelme, masks) the parent's class map is the base and new names are appended, so
adding a class is MINOR. COCO ids are the source's: a real re-index there stays MAJOR. The
`--classes` order given at snapshot time is remembered and used by `dataset fix`."""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET

import pytest

from .test_vault_vision import lv, subset

SAMPLES = __import__("pathlib").Path(__file__).resolve().parents[1] / "data" / "format-samples"


def class_ids(ds) -> dict[str, int]:
    cm = ds.class_map()
    return dict(zip(cm.names, cm.ids))


def boxes_by_name(ds) -> list[tuple]:
    """(image, index, class name) for every annotation: what ids must keep meaning."""
    cm, a = ds.class_map(), ds.annotations()
    return sorted(zip(a["image"].to_pylist(), a["index"].to_pylist(), map(cm.name_of, a["class_id"].to_pylist())))


def add_voc_object(xml_path, name: str) -> None:
    text = xml_path.read_text()
    obj = re.search(r"<object>.*?</object>", text, re.DOTALL).group(0)
    xml_path.write_text(text.replace("</annotation>", re.sub(r"<name>\w+</name>", f"<name>{name}</name>", obj)
                                     + "\n</annotation>"))


def test_voc_adding_a_class_that_sorts_first_keeps_every_id(vault, tmp_path):
    src = subset(tmp_path / "ds", 8)
    first = vault.snapshot("cells", src, format="voc", version="1.0.0")
    assert class_ids(first) == {"Platelets": 0, "RBC": 1, "WBC": 2}
    add_voc_object(src / "Annotations" / "BloodImage_00003.xml", "Basophil")  # sorted first: would be id 0
    r = lv(vault, "dataset", "snapshot", "cells", src, "--format", "voc", "--bump", "auto", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["version"] == "1.1.0" and out["bump"] == "minor", out["changelog"]
    second = vault.dataset("cells@1.1.0")
    assert class_ids(second) == {"Platelets": 0, "RBC": 1, "WBC": 2, "Basophil": 3}
    old = set(boxes_by_name(first))
    assert old < set(boxes_by_name(second))  # every existing box keeps its class
    diff = json.loads(lv(vault, "dataset", "diff", "cells@1.0.0", "cells@1.1.0", "--json").stdout)
    assert diff["classes"]["added"] == [{"id": 3, "name": "Basophil"}] and diff["classes"]["reindexed"] == []
    assert diff["suggested_bump"] == "minor" == second.record.bump  # the diff and the version rule agree
    # Removing a class is still MAJOR: a consumer's id now names nothing.
    for x in (src / "Annotations").glob("*.xml"):
        x.write_text(re.sub(r"<object>\s*<name>Platelets</name>.*?</object>", "", x.read_text(), flags=re.DOTALL))
    third = vault.snapshot("cells", src, format="voc", bump="auto")
    assert third.version == "2.0.0" and class_ids(third) == {"RBC": 1, "WBC": 2, "Basophil": 3}


def labelme_folder(dest, n: int = 5, extra: dict | None = None):
    """labelme JSON beside real JPEGs, one rectangle per VOC object of BCCD."""
    voc = subset(dest.parent / (dest.name + "-voc"), n)
    dest.mkdir(parents=True)
    for xml in sorted((voc / "Annotations").glob("*.xml")):
        root = ET.parse(xml).getroot()
        shutil.copyfile(voc / "JPEGImages" / f"{xml.stem}.jpg", dest / f"{xml.stem}.jpg")
        shapes = []
        for obj in root.iter("object"):
            b = obj.find("bndbox")
            x1, y1, x2, y2 = (float(b.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax"))
            shapes.append({"label": obj.find("name").text, "points": [[x1, y1], [x2, y2]],
                           "shape_type": "rectangle", "group_id": None, "flags": {}})
        shapes += (extra or {}).get(xml.stem, [])
        doc = {"version": "5.2.1", "flags": {}, "shapes": shapes, "imagePath": f"{xml.stem}.jpg", "imageData": None,
               "imageHeight": int(root.find("size/height").text), "imageWidth": int(root.find("size/width").text)}
        (dest / f"{xml.stem}.json").write_text(json.dumps(doc))
    return dest


def test_labelme_adding_a_class_is_minor(vault, tmp_path):
    src = labelme_folder(tmp_path / "lm")
    first = vault.snapshot("lm", src, format="labelme", version="1.0.0")
    assert class_ids(first) == {"Platelets": 0, "RBC": 1, "WBC": 2}
    doc = json.loads((src / "BloodImage_00001.json").read_text())
    doc["shapes"].append({"label": "Artifact", "points": [[10, 10], [40, 40]], "shape_type": "rectangle",
                          "group_id": None, "flags": {}})
    (src / "BloodImage_00001.json").write_text(json.dumps(doc))
    second = vault.snapshot("lm", src, format="labelme", bump="auto")
    assert second.version == "1.1.0" and second.record.bump == "minor"
    assert class_ids(second) == {"Platelets": 0, "RBC": 1, "WBC": 2, "Artifact": 3}
    assert set(boxes_by_name(first)) < set(boxes_by_name(second))


def test_masks_a_class_inserted_into_the_label_map_is_minor(vault, tmp_path):
    src = tmp_path / "masks"
    shutil.copytree(SAMPLES / "common_semantic_segmentation_dataset" / "dataset", src)
    first = vault.snapshot("seg", src, format="masks", version="1.0.0")
    before = class_ids(first)
    meta = json.loads((src / "dataset_meta.json").read_text())
    names = [meta["label_map"][str(i)] for i in range(len(meta["label_map"]))]
    colours = meta["segmentation_colors"]
    names.insert(1, "Building")
    colours.insert(1, [1, 2, 3])  # a colour no mask uses yet
    meta["label_map"] = {str(i): n for i, n in enumerate(names)}
    (src / "dataset_meta.json").write_text(json.dumps(meta))
    second = vault.snapshot("seg", src, format="masks", bump="auto")
    assert second.version == "1.1.0", second.record.changelog
    assert class_ids(second) == {**before, "Building": max(before.values()) + 1}
    assert boxes_by_name(second) == boxes_by_name(first)


def test_coco_ids_are_the_sources_so_a_real_reindex_stays_major(vault, tmp_path):
    src = subset(tmp_path / "ds", 6)
    out = tmp_path / "coco"
    vault.snapshot("cells-voc", src, format="voc", version="1.0.0")
    assert lv(vault, "dataset", "export", "cells-voc@1.0.0", out, "--format", "coco").returncode == 0
    first = vault.snapshot("cells", out, format="coco", version="1.0.0")
    for f in (out / "annotations").glob("*.json"):
        doc = json.loads(f.read_text())
        swap = {1: 2, 2: 1}
        for c in doc["categories"]:
            c["id"] = swap.get(c["id"], c["id"])
        for a in doc["annotations"]:
            a["category_id"] = swap.get(a["category_id"], a["category_id"])
        f.write_text(json.dumps(doc))
    second = vault.snapshot("cells", out, format="coco", bump="auto")
    assert second.version == "2.0.0"
    assert {x["name"] for x in second.record.changelog["classes"]["reindexed"]} == \
        {n for n, i in class_ids(first).items() if i in (1, 2)}


@pytest.mark.parametrize(("name", "text", "ids"), [
    ("classes.txt", "WBC\nRBC\nPlatelets\n", {"WBC": 0, "RBC": 1, "Platelets": 2}),
    ("classes.yaml", "names: {1: WBC, 4: RBC, 7: Platelets}\n", {"WBC": 1, "RBC": 4, "Platelets": 7}),  # gapped
])
def test_classes_given_at_snapshot_are_remembered_by_fix(vault, tmp_path, name, text, ids):
    src = subset(tmp_path / "ds", 8)
    classes = tmp_path / name
    classes.write_text(text)
    r = lv(vault, "dataset", "snapshot", "cells", src, "--format", "voc", "--classes", classes, "--version", "1.0.0")
    assert r.returncode == 0, r.stderr
    first = vault.dataset("cells@1.0.0")
    assert class_ids(first) == ids
    assert first.manifest().source["classes"] == ["WBC", "RBC", "Platelets"]
    assert first.manifest().source["class_ids"] == list(ids.values())
    classes.unlink()  # remembered by the version, not by its path
    fixed = tmp_path / "fixed"
    fixed.mkdir()
    xml = src / "Annotations" / "BloodImage_00002.xml"
    (fixed / xml.name).write_text(re.sub(r"<xmin>(\d+)</xmin>", lambda m: f"<xmin>{int(m.group(1)) - 2}</xmin>",
                                         xml.read_text(), count=1))
    r = lv(vault, "dataset", "fix", "cells@1.0.0", "--annotations", fixed, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["ref"] == "cells@1.0.1" and out["bump"] == "patch" and "1 moved" in out["changelog"]["summary"]
    assert class_ids(vault.dataset("cells@1.0.1")) == class_ids(first)


def test_an_explicit_new_class_order_is_a_real_reindex(vault, tmp_path):
    src = subset(tmp_path / "ds", 8)
    vault.snapshot("cells", src, format="voc", version="1.0.0")
    classes = tmp_path / "classes.txt"
    classes.write_text("WBC\nRBC\nPlatelets\n")
    r = lv(vault, "dataset", "snapshot", "cells", src, "--format", "voc", "--classes", classes, "--version", "1.1.0")
    assert r.returncode == 8 and "moves class" in r.stderr and "MAJOR (2.0.0)" in r.stderr, r.stderr
