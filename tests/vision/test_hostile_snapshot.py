"""Hostile annotation input through the vault and the CLI: snapshot and ``dataset fix`` stop
with a located error (exit 6) and store nothing; folder walks survive symlink loops."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lensvault.errors import AnnotationError, InputError


def lv(vault, *args):
    return subprocess.run([sys.executable, "-m", "lensvault.cli.main", "--vault", str(vault.root), *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def write_image(path: Path, size=(20, 10)) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (len(path.name) * 7 % 255, 40, 90)).save(path)


def coco_folder(root: Path, doc_edit=None) -> Path:
    for name in ("a.png", "b.png"):
        write_image(root / "images" / name)
    doc = {"categories": [{"id": 1, "name": "cat"}],
           "images": [{"id": 1, "file_name": "a.png", "width": 20, "height": 10},
                      {"id": 2, "file_name": "b.png", "width": 20, "height": 10}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4]},
                           {"id": 2, "image_id": 2, "category_id": 1, "bbox": [2, 2, 4, 4]}]}
    if doc_edit:
        doc_edit(doc)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / "instances.json").write_text(json.dumps(doc))
    return root


def test_snapshot_refuses_nan_coordinates_through_api_and_cli(sqlite_vault, tmp_path):
    def nan_box(doc):
        doc["annotations"][1]["bbox"][2] = float("nan")

    src = coco_folder(tmp_path / "src", nan_box)
    before = set(sqlite_vault.store.iter_oids())
    with pytest.raises(AnnotationError) as info:
        sqlite_vault.snapshot("cells", src, format="coco", version="1.0.0")
    assert info.value.where == "annotations/instances.json, annotations[1].bbox[2]"
    r = lv(sqlite_vault, "dataset", "snapshot", "cells", src, "--format", "coco", "--version", "1.0.0")
    assert r.returncode == 6 and "Traceback" not in r.stderr
    assert "where: annotations/instances.json, annotations[1].bbox[2]" in r.stderr and "fix:" in r.stderr
    assert set(sqlite_vault.store.iter_oids()) == before and sqlite_vault.datasets() == []


def test_snapshot_refuses_file_names_outside_src(sqlite_vault, tmp_path):
    write_image(tmp_path / "secret.png")

    def escape(doc):
        doc["images"][0]["file_name"] = str(tmp_path / "secret.png")

    src = coco_folder(tmp_path / "src", escape)
    r = lv(sqlite_vault, "dataset", "snapshot", "cells", src, "--format", "coco", "--version", "1.0.0", "--json")
    assert r.returncode == 6
    err = json.loads(r.stdout)
    assert err["where"] == "annotations/instances.json, images[0].file_name"
    assert err["findings"][0]["code"] == "outside-root"
    assert sqlite_vault.datasets() == []


def test_yolo_data_yaml_path_elsewhere_is_a_recorded_finding_and_strict_refuses(sqlite_vault, tmp_path):
    src = tmp_path / "src"
    write_image(src / "images" / "train" / "1.png")
    (src / "labels" / "train").mkdir(parents=True)
    (src / "labels" / "train" / "1.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (src / "data.yaml").write_text("path: /content/datasets/cells\ntrain: images/train\nnames: [cell]\n")
    r = lv(sqlite_vault, "dataset", "snapshot", "cells", src, "--format", "yolo", "--version", "1.0.0",
           "--strict")
    assert r.returncode == 6 and "outside-root" in r.stderr and "data.yaml, key path" in r.stderr
    r = lv(sqlite_vault, "dataset", "snapshot", "cells", src, "--format", "yolo", "--version", "1.0.0", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert [(f["code"], f["location"]) for f in out["findings"]] == [("outside-root", "key path")]
    assert out["images"] == 1


@pytest.mark.parametrize("links", [{"loop": "loop"}, {"a": "b", "b": "a"}, {"deep/x": "../deep/x"}])
def test_snapshot_of_a_folder_with_a_symlink_loop_is_a_located_error(sqlite_vault, tmp_path, links):
    src = tmp_path / "src"
    src.mkdir()
    (src / "data.bin").write_bytes(b"x" * 10)
    for name, target in links.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, src / name)
    with pytest.raises(InputError) as info:
        sqlite_vault.snapshot("loops", src, version="1.0.0")
    assert "link loop" in info.value.what and info.value.where.startswith(str(src))
    r = lv(sqlite_vault, "dataset", "snapshot", "loops", src, "--version", "1.0.0")
    assert r.returncode == 6 and "Traceback" not in r.stderr and "link loop" in r.stderr


def test_a_folder_link_back_to_an_ancestor_is_walked_once(sqlite_vault, tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f.txt").write_text("x")
    os.symlink("..", src / "sub" / "up")
    ds = sqlite_vault.snapshot("loops", src, version="1.0.0")
    assert ds.files()["path"].to_pylist() == ["sub/f.txt"]


def test_dataset_fix_checks_the_corrected_annotations_like_a_snapshot(sqlite_vault, tmp_path):
    src = coco_folder(tmp_path / "src")
    sqlite_vault.snapshot("cells", src, format="coco", version="1.0.0")
    fixed = tmp_path / "fixed"
    fixed.mkdir()
    doc = json.loads((src / "annotations" / "instances.json").read_text())
    doc["annotations"][0]["bbox"] = [1, 1, "4", 4]
    (fixed / "instances.json").write_text(json.dumps(doc))
    r = lv(sqlite_vault, "dataset", "fix", "cells@1.0.0", "--annotations", fixed)
    assert r.returncode == 6 and "Traceback" not in r.stderr
    assert "annotations/instances.json, annotations[0].bbox[2]" in r.stderr
    doc["annotations"][0]["bbox"] = [1, 1, 4, 4]
    doc["images"][1]["file_name"] = "../../../../../../../../etc/hostname"
    (fixed / "instances.json").write_text(json.dumps(doc))
    with pytest.raises(AnnotationError) as info:
        sqlite_vault.fix("cells@1.0.0", fixed)
    assert info.value.details["findings"][0]["code"] == "outside-root"
    assert [v.version for v in sqlite_vault.versions("cells")] == ["1.0.0"]
    # The same file with a good box is a patch.
    doc["images"][1]["file_name"] = "b.png"
    doc["annotations"][0]["bbox"] = [1, 1, 5, 4]
    (fixed / "instances.json").write_text(json.dumps(doc))
    assert sqlite_vault.fix("cells@1.0.0", fixed).ref == "cells@1.0.1"
