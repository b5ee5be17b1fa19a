"""Commands that read a whole vision version walk it a chunk at a time (exports, ``dataset check``,
``VisionDataset``): a version of many chunks gives exactly what one chunk gives — the same
files byte for byte, the same errors, the same report, the same items."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import lensvault
from lensvault.annotations.exporters import _files
from lensvault.datasets import export, leakage
from lensvault.errors import LensVaultError

from .conftest import BCCD

SAMPLES = BCCD.parents[1] / "format-samples"


def _classified(root: Path) -> Path:
    """An ImageFolder of BCCD images: SPLIT/CLASS/image, and one image two folders deep."""
    images = sorted((BCCD / "JPEGImages").iterdir())[:12]
    for i, image in enumerate(images):
        folder = root / ("val" if i % 3 == 0 else "train") / ("rbc" if i % 2 == 0 else "wbc")
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(image, folder / image.name)
    (root / "train" / "rbc" / "more").mkdir()
    shutil.copy(images[1], root / "train" / "rbc" / "more" / images[1].name)  # a repeated file name
    return root


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    root = tmp_path_factory.mktemp("chunks")
    v = lensvault.init(root / "vault")
    v.snapshot("bccd", BCCD, version="1.0.0", format="voc", split="60/20/20", seed=3, link="copy")
    v.snapshot("bccd", BCCD, version="1.1.0", format="voc", split="50/50", seed=4, link="copy")  # splits moved
    v.snapshot("yolo", SAMPLES / "yolo_dataset", version="1.0.0", format="yolo", link="copy")  # repeated names
    v.snapshot("seg", SAMPLES / "common_semantic_segmentation_dataset" / "dataset", version="1.0.0", format="masks",
               split="50/50", seed=1, link="copy")
    v.snapshot("cls", _classified(root / "cls"), version="1.0.0", format="imagefolder", link="copy")
    yield v
    v.close()


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _export(vault, dest: Path, ref: str, fmt: str, split: str | None) -> dict[str, bytes] | str:
    try:
        vault.export(ref, dest, format=fmt, split=split, link="hardlink")
    except LensVaultError as e:
        return f"{type(e).__name__}: {e}"
    return _tree(dest)


CASES = [("bccd@1.0.0", f, s) for f in ("coco", "yolo", "voc", "labels", "labelme") for s in (None, "train")] + [
    ("bccd@1.0.0", "imagefolder", None),  # refused: names the first 5 images of 47 and "… and 42 more"
    ("yolo@1.0.0", "yolo", None), ("yolo@1.0.0", "voc", None), ("yolo@1.0.0", "coco", None),
    ("seg@1.0.0", "masks", None), ("seg@1.0.0", "coco", None),
    ("cls@1.0.0", "imagefolder", None), ("cls@1.0.0", "labels", "train"), ("cls@1.0.0", "coco", None)]


@pytest.mark.parametrize(("ref", "fmt", "split"), CASES)
def test_an_export_in_chunks_writes_what_one_chunk_writes(versions, tmp_path, monkeypatch, ref, fmt, split):
    whole = _export(versions, tmp_path / "whole", ref, fmt, split)
    monkeypatch.setattr(_files, "CHUNK_IMAGES", 2)
    monkeypatch.setattr(export, "_CHECK_BATCH", 3)
    chunked = _export(versions, tmp_path / "chunked", ref, fmt, split)
    assert chunked == whole
    if isinstance(whole, dict):
        assert whole  # something was written
        assert not any(Path(p).name.startswith(".") for p in whole)  # no side file left


def test_check_in_batches_gives_the_same_report(versions, monkeypatch):
    whole = versions.check("bccd@1.1.0").to_dict()
    monkeypatch.setattr(leakage, "HASH_BATCH", 3)
    assert versions.check("bccd@1.1.0").to_dict() == whole
    assert whole["split_moves"] and whole["near"]  # (what is compared is not empty)


def test_vision_dataset_items_are_the_tables_rows(versions):
    from lensvault.torch import VisionDataset

    version = versions.dataset("bccd@1.0.0")
    images, anns = version.images(), version.annotations()
    by_path = {r["path"]: r for r in images.to_pylist()}
    boxes: dict[str, list[tuple]] = {}
    for a in sorted(anns.to_pylist(), key=lambda a: (a["image"], a["index"])):
        boxes.setdefault(a["image"], []).append((a["class_id"], a["x"], a["y"], a["x"] + a["w"], a["y"] + a["h"]))
    train = VisionDataset(version, split="train")
    assert train.paths == [p for p in images["path"].to_pylist() if by_path[p]["split"] == "train"]
    for i in range(len(train)):
        t = train.target(i)
        row = by_path[t["path"]]
        assert (t["image_id"], t["sha256"], t["split"], t["size"]) == (
            row["image_id"], row["sha256"], "train", (row["width"], row["height"]))
        got = [(int(c), *(float(v) for v in b)) for c, b in zip(t["labels"], t["boxes"])]
        assert got == boxes.get(t["path"], [])  # (whole pixels: exact in float32 too)
