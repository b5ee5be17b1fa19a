"""Vision datasets through the vault and the CLI: BCCD end to end, version rules, the
label-fix workflow, export round trips, leakage checks, stable splits, failed imports."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lensvault.errors import AnnotationError, UsageError, VersionRuleError

from .conftest import BCCD


def lv(vault, *args, cwd=None):
    return subprocess.run([sys.executable, "-m", "lensvault.cli.main", "--vault", str(vault.root), *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)


def subset(dest: Path, n: int, start: int = 0) -> Path:
    """A small VOC copy of BCCD: n images with their XMLs and split files (read-only data stays untouched)."""
    ids = sorted(p.stem for p in (BCCD / "Annotations").glob("*.xml"))[start:start + n]
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (dest / sub).mkdir(parents=True, exist_ok=True)
    for i in ids:
        shutil.copyfile(BCCD / "Annotations" / f"{i}.xml", dest / "Annotations" / f"{i}.xml")
        shutil.copyfile(BCCD / "JPEGImages" / f"{i}.jpg", dest / "JPEGImages" / f"{i}.jpg")
    keep = set(ids)
    for split in ("train", "val", "test"):
        lines = [x for x in (BCCD / "ImageSets/Main" / f"{split}.txt").read_text().split() if x in keep]
        (dest / "ImageSets/Main" / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return dest


def objects(vault) -> set[str]:
    return set(vault.store.iter_oids())


@pytest.fixture
def bccd_required():
    if not BCCD.is_dir():
        pytest.skip(f"BCCD not found at {BCCD}")


def test_bccd_snapshots_with_its_images_boxes_classes_and_splits(vault, bccd_required):
    r = lv(vault, "dataset", "snapshot", "bccd", BCCD, "--format", "auto", "--version", "1.0.0", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert (out["images"], out["annotations"], out["classes"]) == (47, 898, ["Platelets", "RBC", "WBC"])
    assert out["splits"] == {"test": 10, "train": 27, "val": 10}
    assert sorted(f["code"] for f in out["findings"]) == ["zero-area-box", "zero-area-box"]
    show = json.loads(lv(vault, "dataset", "show", "bccd@1.0.0", "--json").stdout)
    assert {"images", "annotations", "classes", "splits", "per_class"} <= show.keys()
    assert sum(c["total"] for c in show["per_class"].values()) == 898
    assert show["per_class"]["WBC"]["test"] + show["per_class"]["WBC"]["train"] + show["per_class"]["WBC"]["val"] == \
        show["per_class"]["WBC"]["total"]
    assert show["split_spec"]["method"] == "source"


def test_version_rules_refuse_an_understated_bump_and_derive_auto(sqlite_vault, tmp_path, bccd_required):
    v = sqlite_vault
    src = subset(tmp_path / "ds", 30)
    v.snapshot("cells", src, format="voc", version="1.0.0")
    for name in ("BloodImage_00000", "BloodImage_00001"):
        for p in src.rglob(f"{name}.*"):
            p.unlink()
    with pytest.raises(VersionRuleError) as ei:
        v.snapshot("cells", src, format="voc", version="1.0.1")
    assert "needs MINOR (1.1.0)" in ei.value.what and "removes 2 images" in ei.value.what
    assert [x.version for x in v.versions("cells")] == ["1.0.0"]
    forced = v.snapshot("cells", src, format="voc", version="1.0.1", force=True)
    assert forced.record.forced and "forced" in forced.record.changelog
    # Renaming a class breaks consumers' label maps: MAJOR.
    for xml in (src / "Annotations").glob("*.xml"):
        xml.write_text(xml.read_text().replace("<name>WBC</name>", "<name>Leukocyte</name>"))
    auto = v.snapshot("cells", src, format="voc", bump="auto")
    assert auto.version == "2.0.0" and auto.record.bump == "major"
    with pytest.raises(UsageError, match="nothing changed"):
        v.snapshot("cells", src, format="voc", bump="auto")


def test_label_fix_workflow_makes_a_patch_with_a_changelog(sqlite_vault, tmp_path, bccd_required):
    v = sqlite_vault
    src = subset(tmp_path / "ds", 20)
    v.snapshot("cells", src, format="voc", version="1.0.0")
    fixed = tmp_path / "fixed"
    fixed.mkdir()
    xml = sorted((src / "Annotations").glob("*.xml"))[3]
    text = xml.read_text()
    first = re.search(r"<name>(\w+)</name>", text).group(1)
    other = "Platelets" if first != "Platelets" else "RBC"
    (fixed / xml.name).write_text(text.replace(f"<name>{first}</name>", f"<name>{other}</name>", 1))
    r = lv(v, "dataset", "fix", "cells@1.0.0", "--annotations", fixed, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["ref"] == "cells@1.0.1" and out["bump"] == "patch"
    assert "1 relabeled" in out["changelog"]["summary"]
    diff = json.loads(lv(v, "dataset", "diff", "cells@1.0.0", "cells@1.0.1", "--json").stdout)
    assert {"images", "annotations", "classes", "split_moves", "suggested_bump", "added", "removed", "modified"} <= diff.keys()
    assert diff["suggested_bump"] == "patch" and diff["modified"] == [f"Annotations/{xml.name}"]
    log = lv(v, "dataset", "log", "cells").stdout
    assert "1 relabeled" in log
    # A "fix" that introduces a new class is not a patch: refused, nothing created.
    (fixed / xml.name).write_text(text.replace(f"<name>{first}</name>", "<name>Neutrophil</name>", 1))
    r = lv(v, "dataset", "fix", "cells@1.0.1", "--annotations", fixed)
    assert r.returncode == 8 and "not a patch" in r.stderr
    assert [x.version for x in v.versions("cells")] == ["1.0.0", "1.0.1"]
    # The fixed version keeps the exact split membership of its parent.
    a, b = v.dataset("cells@1.0.0").images(), v.dataset("cells@1.0.1").images()
    assert a.select(["path", "split"]).to_pylist() == b.select(["path", "split"]).to_pylist()


@pytest.mark.parametrize("fmt", ["coco", "yolo", "voc"])
def test_export_round_trips(sqlite_vault, tmp_path, fmt, bccd_required):
    from lensvault.annotations import load

    v = sqlite_vault
    ds = v.snapshot("cells", subset(tmp_path / "ds", 15), format="voc", version="1.0.0")
    r = lv(v, "dataset", "export", "cells@1.0.0", tmp_path / "out", "--format", fmt, "--json")
    assert r.returncode == 0, r.stderr
    back = load(tmp_path / "out", format=fmt)
    assert back.images.num_rows == ds.images().num_rows
    assert back.annotations.num_rows == ds.annotations().num_rows
    assert list(back.classes.names) == list(ds.class_map().names)
    assert sorted(x for x in back.images["split"].to_pylist() if x) == sorted(x for x in ds.images()["split"].to_pylist() if x)
    if fmt == "coco":
        from pycocotools.coco import COCO

        for f in (tmp_path / "out" / "annotations").glob("*.json"):
            COCO(str(f))
    r = lv(v, "dataset", "export", "cells@1.0.0", tmp_path / "out", "--format", fmt)
    assert r.returncode == 6 and "not empty" in r.stderr


def test_export_copies_from_any_store_and_links_only_from_local_files(store_vault, tmp_path, bccd_required):
    """Export through the store interface: each image is the store object, copied (and hashed) from a
    store without local files too; a link is refused there before anything is written."""
    from lensvault.annotations import load

    v = store_vault
    src = subset(tmp_path / "ds", 6)
    ds = v.snapshot("cells", src, format="voc", version="1.0.0")
    v.export("cells@1.0.0", tmp_path / "out", format="coco")
    back = load(tmp_path / "out", format="coco")
    assert back.images.num_rows == ds.images().num_rows == 6
    for jpg in (src / "JPEGImages").glob("*.jpg"):
        [copy] = (tmp_path / "out").rglob(jpg.name)
        assert copy.read_bytes() == jpg.read_bytes() and os.access(copy, os.W_OK)
    if v.store.local() is None:
        with pytest.raises(UsageError) as ei:
            v.export("cells@1.0.0", tmp_path / "linked", format="coco", link="hardlink")
        assert ei.value.where == "--link hardlink" and not (tmp_path / "linked").exists()
    else:
        v.export("cells@1.0.0", tmp_path / "linked", format="coco", link="hardlink")
        [linked] = (tmp_path / "linked").rglob(next((src / "JPEGImages").glob("*.jpg")).name)
        assert linked.stat().st_nlink > 1


def test_check_finds_an_image_shared_by_train_and_test(sqlite_vault, tmp_path, bccd_required):
    v = sqlite_vault
    src = subset(tmp_path / "ds", 12)
    train = (src / "ImageSets/Main/train.txt").read_text().split()
    test_ids = (src / "ImageSets/Main/test.txt").read_text().split()
    assert train and test_ids
    # Copy a training image into the test split under a new name: the same photo twice.
    dup = "BloodImage_99999"
    shutil.copyfile(src / "JPEGImages" / f"{train[0]}.jpg", src / "JPEGImages" / f"{dup}.jpg")
    xml = (src / "Annotations" / f"{train[0]}.xml").read_text().replace(train[0], dup)  # its own <filename>
    (src / "Annotations" / f"{dup}.xml").write_text(xml)
    (src / "ImageSets/Main/test.txt").write_text("\n".join([*test_ids, dup]) + "\n")
    v.snapshot("cells", src, format="voc", version="1.0.0")
    r = lv(v, "dataset", "check", "cells@1.0.0", "--json")
    assert r.returncode == 1, r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert report["has_train_test_leak"] is True
    assert dup in r.stdout


def test_hash_splits_are_stable_when_images_are_added_and_groups_stay_together(sqlite_vault, tmp_path, bccd_required):
    v = sqlite_vault
    src = subset(tmp_path / "ds", 20)
    first = v.snapshot("cells", src, format="voc", version="1.0.0", split="70/20/10", seed=42)
    before = dict(zip(first.images()["path"].to_pylist(), first.images()["split"].to_pylist()))
    subset(src, 20, start=20)  # 20 more images into the same folder
    second = v.snapshot("cells", src, format="voc", bump="auto", split="70/20/10", seed=42)
    after = dict(zip(second.images()["path"].to_pylist(), second.images()["split"].to_pylist()))
    assert second.version == "1.1.0" and len(after) == 40
    assert all(after[p] == s for p, s in before.items())
    grouped = v.snapshot("grouped", src, format="voc", version="1.0.0", split="50/50", seed=7,
                         group_by=r"BloodImage_000(\d)")
    groups: dict[str, set] = {}
    for p, s in zip(grouped.images()["path"].to_pylist(), grouped.images()["split"].to_pylist()):
        groups.setdefault(re.search(r"BloodImage_000(\d)", p).group(1), set()).add(s)
    assert all(len(s) == 1 for s in groups.values())
    with pytest.raises(UsageError, match="seed"):
        v.snapshot("nosplit", src, format="voc", version="1.0.0", split="70/20/10")


def test_a_failed_import_stores_nothing(sqlite_vault, tmp_path, bccd_required):
    v = sqlite_vault
    src = subset(tmp_path / "ds", 5)
    xml = sorted((src / "Annotations").glob("*.xml"))[2]
    xml.write_text(xml.read_text().replace("</annotation>", ""))  # truncated XML
    before = objects(v)
    with pytest.raises(AnnotationError) as ei:
        v.snapshot("cells", src, format="voc", version="1.0.0")
    assert xml.name in str(ei.value.where) + ei.value.what and ei.value.fix
    assert objects(v) == before and v.datasets() == []
    r = lv(v, "dataset", "snapshot", "cells", src, "--format", "voc", "--version", "1.0.0")
    assert r.returncode == 6 and "fix:" in r.stderr and "Traceback" not in r.stderr
    assert not (v.manifests_dir / "cells").exists()
