"""VisionDataset over images in a real object store: a small stand-in dataset, and a real vault."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from PIL import Image

from lensvault.annotations.image_ids import image_ids
from lensvault.errors import UsageError
from lensvault.store import LocalObjectStore
from lensvault.torch import VisionDataset, _torch

from .conftest import image_paths, set_column


class StoredVersion:
    """What VisionDataset reads from a dataset version: tables, class map, and ``vault.store``."""

    def __init__(self, ref, images, annotations, classes, store):
        self.ref, self._images, self._annotations, self._classes = ref, images, annotations, classes
        self.vault = SimpleNamespace(store=store)

    def images(self):
        return self._images

    def annotations(self):
        return self._annotations

    def class_map(self):
        return self._classes


@pytest.fixture
def stored(bccd, bccd_root, tmp_path):
    store = LocalObjectStore(tmp_path / "objects")
    store.create()
    keep = image_paths(bccd)[:15]
    images = bccd.images.filter(pc.is_in(bccd.images["path"], pa.array(keep)))
    for path, sha in zip(images["path"].to_pylist(), images["sha256"].to_pylist()):
        assert store.put_bytes((bccd_root / path).read_bytes()) == sha
    tags = ['{"light":"day"}' if i % 2 else "{}" for i in range(images.num_rows)]
    images = set_column(images, "tags", tags)
    annotations = bccd.annotations.filter(pc.is_in(bccd.annotations["image"], pa.array(keep)))
    return StoredVersion("bccd@1.0.0", images, annotations, bccd.classes, store)


def test_items_are_images_from_the_store_with_xyxy_targets(stored, bccd_root):
    ds = VisionDataset(stored)
    assert len(ds) == 15 and ds.class_names == ["Platelets", "RBC", "WBC"] and ds.classes == stored.class_map()
    rows = stored.annotations().to_pylist()
    for i in (0, 7, 14):
        image, target = ds[i]
        path = stored.images()["path"][i].as_py()
        assert isinstance(image, Image.Image) and image.mode == "RGB"
        with Image.open(bccd_root / path) as original:
            assert image.size == original.size == target["size"]
            assert image.tobytes() == original.convert("RGB").tobytes()
        mine = sorted((r for r in rows if r["image"] == path), key=lambda r: r["index"])
        assert target["boxes"] == [[r["x"], r["y"], r["x"] + r["w"], r["y"] + r["h"]] for r in mine]
        assert target["labels"] == [r["class_id"] for r in mine]
        assert target["iscrowd"] == [0] * len(mine)
        # A table without stored ids (as from an importer) reads with the rule's fallback: 1 + rank by path.
        assert (target["path"], target["image_id"]) == (path, sorted(stored.images()["path"].to_pylist()).index(path) + 1)
        assert target["tags"] == ({"light": "day"} if i % 2 else {})
        json.dumps(target)  # plain Python values without torch


def test_split_selects_images_and_keeps_image_ids(stored):
    splits = stored.images()["split"].to_pylist()
    train = VisionDataset(stored, "train")
    assert len(train) == splits.count("train") > 0
    ids = image_ids(stored.images())
    assert [train[i][1]["image_id"] for i in range(len(train))] == [ids[i] for i, s in enumerate(splits) if s == "train"]
    assert all(train[i][1]["split"] == "train" for i in range(len(train)))
    with pytest.raises(UsageError, match="no images in split 'holdout'") as err:
        VisionDataset(stored, "holdout")
    assert "test, train, val" in err.value.fix


def test_indexing_and_transforms(stored):
    ds = VisionDataset(stored, transform=lambda im: im.resize((32, 24)),
                       transforms=lambda im, t: (im, {**t, "n": len(t["boxes"])}))
    image, target = ds[-1]
    assert image.size == (32, 24) and target["path"] == ds.paths[-1] and target["n"] == len(target["boxes"])
    with pytest.raises(IndexError):
        ds[15]
    import numpy as np

    assert ds[np.int64(2)][1]["image_id"] == image_ids(stored.images())[2]


def test_image_without_boxes_has_empty_target(stored):
    first = stored.images()["path"][0].as_py()
    stored._annotations = stored.annotations().filter(pc.not_equal(stored.annotations()["image"], first))
    _, target = VisionDataset(stored)[0]
    assert target["boxes"] == [] and target["labels"] == []


def test_version_without_annotations_is_refused(stored):
    stored._annotations = None
    with pytest.raises(UsageError, match="has no annotations"):
        VisionDataset(stored)


def test_torch_is_optional_here():
    assert _torch() is None  # torch is not installed in this environment


def test_importing_the_vision_modules_loads_no_heavy_dependency():
    code = ("import sys, lensvault, lensvault.torch, lensvault.datasets.annotation_diff, "
            "lensvault.datasets.bump, lensvault.datasets.changelog, lensvault.datasets.leakage; "
            "print(sorted(m for m in ('torch', 'numpy', 'pyarrow', 'PIL', 'imagehash') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def copy_bccd_subset(root, dest, n: int):
    """A VOC folder with the first n BCCD images, their XML and the ImageSets lists."""
    stems = sorted(p.stem for p in (root / "JPEGImages").glob("*.jpg"))[:n]
    (dest / "JPEGImages").mkdir(parents=True)
    (dest / "Annotations").mkdir()
    (dest / "ImageSets" / "Main").mkdir(parents=True)
    for stem in stems:
        shutil.copy(root / "JPEGImages" / f"{stem}.jpg", dest / "JPEGImages")
        shutil.copy(root / "Annotations" / f"{stem}.xml", dest / "Annotations")
    for split in ("train", "val", "test"):
        listed = (root / "ImageSets" / "Main" / f"{split}.txt").read_text().split()
        (dest / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{s}\n" for s in listed if s in stems))
    return dest


def test_reads_a_real_vault_version(bccd_root, tmp_path):
    import lensvault

    src = copy_bccd_subset(bccd_root, tmp_path / "bccd", 12)
    vault = lensvault.init(tmp_path / "vault")
    try:
        vault.snapshot("bccd", src, version="1.0.0", format="voc", link="copy")
        ds = VisionDataset("bccd@1.0.0", "train", vault=vault)
        from lensvault.annotations import load

        expected = load(src, format="voc")
        train = [p for p, s in zip(expected.images["path"].to_pylist(), expected.images["split"].to_pylist())
                 if s == "train"]
        assert ds.paths == train and len(ds) > 0
        image, target = ds[0]
        with Image.open(src / train[0]) as original:
            assert image.tobytes() == original.convert("RGB").tobytes()
        n_boxes = pc.sum(pc.equal(expected.annotations["image"], train[0]).cast("int64")).as_py()
        assert len(target["boxes"]) == len(target["labels"]) == n_boxes > 0
        assert ds.class_names == list(expected.classes.names)
    finally:
        vault.close()
