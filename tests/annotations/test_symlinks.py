"""One rule for symlinks in every importer: nothing is read through a link that leads outside
the dataset folder — images included (their header is data from elsewhere) — except into
folders the caller trusts: the vault trusts its own object store, so a `checkout --link
symlink` of a version can be snapshotted again."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lensvault.annotations import load
from lensvault.errors import AnnotationError, InputError

from .conftest import BCCD, write_image


def _outside(tmp_path: Path, name: str) -> Path:
    return write_image(tmp_path / "elsewhere" / name, 40, 30)


def _voc(root: Path, outside: Path) -> str:
    """BCCD copy whose first image is a link out (found through its XML's <filename>)."""
    shutil.copytree(BCCD / "BCCD", root)
    image = root / "JPEGImages" / "BloodImage_00000.jpg"
    image.unlink()
    image.symlink_to(outside)
    return "voc"


def _voc_negative(root: Path, outside: Path) -> str:
    """The link is an image no XML names: read as a negative from JPEGImages/."""
    shutil.copytree(BCCD / "BCCD", root)
    (root / "JPEGImages" / "zz_extra.jpg").symlink_to(outside)
    return "voc"


def _labelme(root: Path, outside: Path) -> str:
    root.mkdir(parents=True)
    (root / "a.png").symlink_to(outside)
    (root / "a.json").write_text(json.dumps({
        "version": "5.2.1", "flags": {}, "imagePath": "a.png", "imageData": None, "imageHeight": 30,
        "imageWidth": 40, "shapes": [{"label": "cat", "points": [[1, 1], [9, 9]], "shape_type": "rectangle",
                                      "group_id": None, "flags": {}}]}))
    return "labelme"


def _masks(root: Path, outside: Path) -> str:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "images" / "a.png").symlink_to(outside)
    Image.fromarray(np.ones((30, 40), np.uint8), mode="L").save(root / "masks" / "a.png")
    (root / "labelmap.txt").write_text("background:0,0,0::\ncat:1,1,1::\n")
    return "masks"


def _yolo(root: Path, outside: Path) -> str:
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "images" / "a.png").symlink_to(outside)
    (root / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (root / "classes.txt").write_text("cat\n")
    return "yolo"


def _coco(root: Path, outside: Path) -> str:
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    (root / "images" / "a.png").symlink_to(outside)
    (root / "annotations" / "instances_train.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.png", "width": 40, "height": 30}],
        "categories": [{"id": 1, "name": "cat"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5], "iscrowd": 0}]}))
    return "coco"


LAYOUTS = [_voc, _voc_negative, _labelme, _masks, _yolo, _coco]


@pytest.mark.parametrize("make", LAYOUTS, ids=[m.__name__[1:] for m in LAYOUTS])
def test_an_image_linked_from_outside_is_refused_by_every_importer(tmp_path, make):
    outside = _outside(tmp_path, "secret.jpg" if "voc" in make.__name__ else "secret.png")
    fmt = make(tmp_path / "src", outside)
    with pytest.raises(AnnotationError) as info:
        load(tmp_path / "src", format=fmt)
    err = info.value
    assert err.details["findings"][0]["code"] == "outside-root"
    assert str(outside) in err.what and "outside the dataset folder" in err.what
    # Trusting the folder the link leads into (what the vault does for its store) reads it.
    aset = load(tmp_path / "src", format=fmt, trusted=[outside.parent])
    assert aset.images.num_rows >= 1


def lv(vault_dir: Path, *args):
    return subprocess.run([sys.executable, "-m", "lensvault.cli.main", "--vault", str(vault_dir), *map(str, args)],
                          capture_output=True, text=True)


def test_a_symlink_checkout_snapshots_again_but_a_link_elsewhere_in_it_is_refused(sqlite_vault, tmp_path):
    """`checkout --link symlink` makes every file a link into the vault's store: snapshotting that
    folder (with annotations, and plain) works and gives the same content. A link to anywhere
    else in the same folder is still refused, by the walk and the importers alike."""
    v = sqlite_vault
    first = v.snapshot("cells", BCCD / "BCCD", format="voc", version="1.0.0")
    dest = tmp_path / "co"
    r = lv(v.root, "dataset", "checkout", "cells@1.0.0", dest, "--link", "symlink")
    assert r.returncode == 0, r.stderr
    linked = dest / "JPEGImages" / "BloodImage_00000.jpg"
    assert linked.is_symlink() and os.path.realpath(linked).startswith(os.path.realpath(v.store.root))

    r = lv(v.root, "dataset", "snapshot", "again", dest, "--format", "auto", "--version", "1.0.0", "--json")
    assert r.returncode == 0, r.stderr
    again = v.dataset("again@1.0.0")
    assert again.snapshot_id == first.snapshot_id
    assert again.images().num_rows == 47 and again.annotations().num_rows == first.annotations().num_rows
    r = lv(v.root, "dataset", "snapshot", "plain", dest, "--version", "1.0.0")
    assert r.returncode == 0, r.stderr

    outside = _outside(tmp_path, "secret.jpg")
    (dest / "JPEGImages" / "zz_secret.jpg").symlink_to(outside)
    for args in (["--format", "voc"], []):
        r = lv(v.root, "dataset", "snapshot", "leak", dest, *args, "--version", "1.0.0")
        assert r.returncode != 0 and "outside the dataset folder" in r.stderr + r.stdout, args
    assert [d["name"] for d in json.loads(lv(v.root, "dataset", "list", "--json").stdout)] == [
        "again", "cells", "plain"]
    with pytest.raises(InputError):
        v.snapshot("leak", dest, version="1.0.0")
