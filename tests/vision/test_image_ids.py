"""One image id per version, everywhere: COCO exports (any split), the run's instances.json,
``eval``, ``VisionDataset`` and ``Dataset.images()`` — stable across versions (docs/formats.md)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from lensvault.annotations.image_ids import assign_image_ids, image_ids, issued_through

from .conftest import BCCD

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "format-samples"


def lv(vault, *args):
    return subprocess.run([sys.executable, "-m", "lensvault.cli.main", "--vault", str(vault.root), *map(str, args)],
                          capture_output=True, text=True)


def lv_json(vault, *args):
    r = lv(vault, *args, "--json")
    assert r.returncode == 0, r.stderr + r.stdout
    return json.loads(r.stdout)


def subset(dest: Path, names: list[str]) -> Path:
    """A VOC copy of BCCD holding only the images ``names`` (no split files: splits come from --split)."""
    for sub in ("Annotations", "JPEGImages"):
        (dest / sub).mkdir(parents=True, exist_ok=True)
    for n in names:
        shutil.copyfile(BCCD / "Annotations" / f"{n}.xml", dest / "Annotations" / f"{n}.xml")
        shutil.copyfile(BCCD / "JPEGImages" / f"{n}.jpg", dest / "JPEGImages" / f"{n}.jpg")
    return dest


def bccd_names() -> list[str]:
    return sorted(p.stem for p in (BCCD / "Annotations").glob("*.xml"))


def exported(dest: Path) -> dict:
    """image path → id, and the annotations, from every instances_*.json of a COCO export."""
    ids, anns = {}, []
    for f in sorted((dest / "annotations").glob("instances_*.json")):
        doc = json.loads(f.read_text())
        for im in doc["images"]:
            assert ids.setdefault(im["file_name"], im["id"]) == im["id"]
        anns += doc["annotations"]
    return {"ids": ids, "annotations": anns}


def perfect_predictions(anns: list[dict]) -> list[dict]:
    # The export's ground truth itself, every annotation: BCCD's two zero-area boxes (not scored, on
    # either side) and the COCO sample's crowd region (a detection on it is ignored) included.
    return [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
            for a in anns]


def zero_area(anns: list[dict]) -> int:
    return sum(1 for a in anns if not (a["bbox"][2] > 0 and a["bbox"][3] > 0))


@pytest.mark.parametrize("sample", ["bccd", "coco"])
def test_predictions_built_from_an_export_score_ap_1_on_every_split(vault, tmp_path, sample):
    """dataset export --format coco [--split S] → predictions = its ground truth → eval: AP = 1 exactly."""
    if sample == "bccd":
        src, args, splits = BCCD, ["--format", "voc"], ["train", "val", "test", "all"]
    else:
        src, args, splits = SAMPLES / "coco_dataset" / "coco_instances", ["--format", "coco"], ["train", "val", "all"]
    r = lv(vault, "dataset", "snapshot", "ds", src, *args, "--version", "1.0.0")
    assert r.returncode == 0, r.stderr
    zero_seen = crowd_seen = 0
    for split in splits:
        dest = tmp_path / f"export-{split}"
        r = lv(vault, "dataset", "export", "ds@1.0.0", dest, "--format", "coco",
               *(["--split", split] if split != "all" else []))
        assert r.returncode == 0, r.stderr
        preds = perfect_predictions(exported(dest)["annotations"])
        assert preds
        (tmp_path / f"preds-{split}.json").write_text(json.dumps(preds))
        res = lv_json(vault, "eval", "--dataset", "ds@1.0.0", "--split", split, "--predictions",
                      tmp_path / f"preds-{split}.json")
        # 1 up to COCOeval's own epsilon (precision = tp / (tp + fp + eps)): one wrong id costs far more.
        for key in ("AP", "AP50", "AP75"):
            assert res["overall"][key] == pytest.approx(1.0, abs=1e-12), (split, key)
        assert res["counts"]["predictions"] == len(preds)
        assert res["counts"]["zero_area_predictions"] == res["counts"]["zero_area_ground_truth"] == zero_area(preds)
        zero_seen += zero_area(preds) if split != "all" else 0
        crowd_seen += sum(1 for a in exported(dest)["annotations"] if a["iscrowd"]) if split != "all" else 0
    # The rule was tried: BCCD's two zero-area boxes (train and val), the COCO sample's crowd region.
    assert (zero_seen, crowd_seen) == ((2, 0) if sample == "bccd" else (0, 1))


def test_every_reader_gives_an_image_the_same_id(sqlite_vault, tmp_path):
    """Dataset.images(), dataset show --files, the COCO export of any split, the run's instances.json
    and VisionDataset agree, and a first version numbers its images 1..N in path order."""
    from lensvault.runs.datadir import coco_ground_truth
    from lensvault.torch import VisionDataset

    v = sqlite_vault
    ds = v.snapshot("cells", subset(tmp_path / "src", bccd_names()[:12]), format="voc", version="1.0.0",
                    split="50/25/25", seed=3)
    table = ds.images()
    truth = dict(zip(table["path"].to_pylist(), table["image_id"].to_pylist()))
    assert table.schema.field("image_id").type == pa.int64() and not table.schema.field("image_id").nullable
    assert [truth[p] for p in sorted(truth)] == list(range(1, 13))

    listed = lv_json(v, "dataset", "show", "cells@1.0.0", "--files")["file_list"]
    assert {f["path"]: f["image_id"] for f in listed if f["image_id"] is not None} == truth
    assert all(f["path"].startswith("Annotations/") for f in listed if f["image_id"] is None)
    text = lv(v, "dataset", "show", "cells@1.0.0", "--files").stdout
    assert "image id" in text

    for split in ("train", "val", "test", None):
        dest = tmp_path / f"export-{split}"
        v.export("cells@1.0.0", dest, format="coco", split=split)
        got = exported(dest)["ids"]
        assert got and all(truth[p] == i for p, i in got.items()), split
        gt = coco_ground_truth(ds, split)
        assert {im["file_name"]: im["id"] for im in gt["images"]} == {
            p: i for p, i in truth.items() if split is None or p in got}
        vd = VisionDataset(ds, split)
        assert {vd.paths[k]: vd.target(k)["image_id"] for k in range(len(vd))} == {
            p: i for p, i in truth.items() if split is None or p in got}


def test_ids_are_stable_across_a_minor_and_a_patch(sqlite_vault, tmp_path):
    v = sqlite_vault
    names = bccd_names()
    src = subset(tmp_path / "src", names[:10])
    first = v.snapshot("cells", src, format="voc", version="1.0.0", split="70/20/10", seed=42)
    ids1 = dict(zip(first.images()["path"].to_pylist(), first.images()["image_id"].to_pylist()))

    # MINOR: three images added, one renamed (same bytes, new name), one removed.
    subset(src, names[10:13])
    old, new = names[2], names[2] + "_renamed"
    (src / "JPEGImages" / f"{old}.jpg").rename(src / "JPEGImages" / f"{new}.jpg")
    xml = (src / "Annotations" / f"{old}.xml").read_text().replace(old, new)
    (src / "Annotations" / f"{old}.xml").unlink()
    (src / "Annotations" / f"{new}.xml").write_text(xml)
    gone = names[9]
    (src / "JPEGImages" / f"{gone}.jpg").unlink()
    (src / "Annotations" / f"{gone}.xml").unlink()
    second = v.snapshot("cells", src, format="voc", bump="auto", split="70/20/10", seed=42)
    assert second.version == "1.1.0"
    ids2 = dict(zip(second.images()["path"].to_pylist(), second.images()["image_id"].to_pylist()))
    kept = [p for p in ids1 if p in ids2]
    assert len(kept) == 8 and all(ids2[p] == ids1[p] for p in kept)
    assert ids2[f"JPEGImages/{new}.jpg"] == ids1[f"JPEGImages/{old}.jpg"]
    added = sorted(f"JPEGImages/{n}.jpg" for n in names[10:13])
    assert [ids2[p] for p in added] == [11, 12, 13]  # max(parent ids) + 1, + 2, … in path order
    assert f"JPEGImages/{gone}.jpg" not in ids2

    # PATCH: `dataset fix` moves a box; every id stays.
    fixed = tmp_path / "fixed"
    fixed.mkdir()
    target = src / "Annotations" / f"{names[0]}.xml"
    text = target.read_text()
    i = text.index("<xmin>") + len("<xmin>")
    j = text.index("</xmin>")
    (fixed / target.name).write_text(text[:i] + str(int(text[i:j]) + 3) + text[j:])
    r = lv(v, "dataset", "fix", "cells@1.1.0", "--annotations", fixed)
    assert r.returncode == 0, r.stderr
    third = v.dataset("cells@1.1.1")
    assert third.record.bump == "patch"
    ids3 = dict(zip(third.images()["path"].to_pylist(), third.images()["image_id"].to_pylist()))
    assert ids3 == ids2


def test_a_version_written_before_ids_were_stored_reads_with_the_fallback(sqlite_vault, tmp_path, monkeypatch):
    """1 + rank by path — what eval and instances.json used then — for the old version, its exports,
    its evaluations and VisionDataset; a child version keeps those ids and numbers new images after them."""
    import lensvault.annotations.image_ids as image_ids_module
    from lensvault.torch import VisionDataset

    v = sqlite_vault
    names = bccd_names()
    src = subset(tmp_path / "src", names[:6])
    with monkeypatch.context() as m:
        m.setattr(image_ids_module, "assign_image_ids", lambda images, parent_images=None, **_: images)
        old = v.snapshot("cells", src, format="voc", version="1.0.0")
    from lensvault.datasets import files_table

    stored = files_table.read(v.store.read_bytes(old.manifest().tables["images"]["oid"]))
    assert "image_id" not in stored.column_names  # an old-style images table
    paths = stored["path"].to_pylist()
    fallback = {p: sorted(paths).index(p) + 1 for p in paths}
    old = v.dataset("cells@1.0.0")
    assert dict(zip(old.images()["path"].to_pylist(), old.images()["image_id"].to_pylist())) == fallback
    v.export("cells@1.0.0", tmp_path / "export", format="coco")
    assert exported(tmp_path / "export")["ids"] == fallback
    vd = VisionDataset(old)
    assert {vd.paths[k]: vd.target(k)["image_id"] for k in range(len(vd))} == fallback
    preds = perfect_predictions(exported(tmp_path / "export")["annotations"])
    (tmp_path / "preds.json").write_text(json.dumps(preds))
    assert v.evaluate(dataset="cells@1.0.0", split=None, predictions=tmp_path / "preds.json")["overall"]["AP"] == 1.0

    subset(src, names[6:8])
    child = v.snapshot("cells", src, format="voc", bump="auto")
    ids = dict(zip(child.images()["path"].to_pylist(), child.images()["image_id"].to_pylist()))
    assert all(ids[p] == i for p, i in fallback.items())
    assert sorted(ids[f"JPEGImages/{n}.jpg"] for n in names[6:8]) == [7, 8]


def _table(rows):
    return pa.table({"path": [p for p, _ in rows], "sha256": [s for _, s in rows]})


def test_assignment_rule():
    first = assign_image_ids(_table([("b", "2"), ("a", "1"), ("c", "3")]))
    assert image_ids(first) == [2, 1, 3]
    # same path keeps its id; the removed top id is not reused for new images of this version
    second = assign_image_ids(_table([("a", "1"), ("b", "2"), ("d", "4")]), first)
    assert image_ids(second) == [1, 2, 4]
    # renamed (same bytes, unique on both sides, old path gone) keeps its id; copies do not
    third = assign_image_ids(_table([("a", "1"), ("b2", "2"), ("d", "4"), ("e", "4")]), second)
    assert image_ids(third) == [1, 2, 4, 5]
    # a path whose bytes changed is still the same image
    fourth = assign_image_ids(_table([("a", "changed"), ("b2", "2")]), third)
    assert image_ids(fourth) == [1, 2]
    # without a stored column: 1 + rank by path
    assert image_ids(_table([("z", None), ("m", None), ("a", None)])) == [3, 2, 1]
    # new images are numbered above the dataset's high-water mark, not above the parent's ids
    fifth = assign_image_ids(_table([("a", "changed"), ("b2", "2"), ("f", "6")]), fourth, issued=9)
    assert image_ids(fifth) == [1, 2, 10]
    assert issued_through(fifth, 9) == 10 and issued_through(fourth, 9) == 9 and issued_through(fourth) == 2


def _ids(ds) -> dict[str, int]:
    return dict(zip(ds.images()["path"].to_pylist(), ds.images()["image_id"].to_pylist()))


def test_an_id_is_never_handed_out_twice_in_a_datasets_history(vault, tmp_path):
    """Remove the images holding the highest ids (1.1.0), fix a box (1.1.1, `dataset fix`), add new
    images (1.2.0): they get ids above every id ever issued, not the removed ones. A version made
    from an older parent (1.3.0 from 1.1.1, after 1.2.0) numbers above 1.2.0's ids too."""
    names = bccd_names()
    src = subset(tmp_path / "src", names[:10])
    first = vault.snapshot("cells", src, format="voc", version="1.0.0")
    ids1 = _ids(first)
    assert sorted(ids1.values()) == list(range(1, 11))
    assert first.manifest().tables["images"]["ids_issued"] == 10
    top = sorted(ids1, key=ids1.get)[-2:]  # the images holding ids 9 and 10
    for path in top:
        (src / path).unlink()
        (src / "Annotations" / (Path(path).stem + ".xml")).unlink()
    second = vault.snapshot("cells", src, format="voc", bump="auto")
    assert second.version == "1.1.0" and max(_ids(second).values()) == 8
    assert second.manifest().tables["images"]["ids_issued"] == 10

    fixed = tmp_path / "fixed"
    fixed.mkdir()
    xml = src / "Annotations" / f"{names[0]}.xml"
    text = xml.read_text()
    i, j = text.index("<xmin>") + len("<xmin>"), text.index("</xmin>")
    (fixed / xml.name).write_text(text[:i] + str(int(text[i:j]) + 2) + text[j:])
    r = lv(vault, "dataset", "fix", "cells@1.1.0", "--annotations", fixed)
    assert r.returncode == 0, r.stderr
    third = vault.dataset("cells@1.1.1")
    assert _ids(third) == _ids(second) and third.manifest().tables["images"]["ids_issued"] == 10

    subset(src, names[10:12])
    fourth = vault.snapshot("cells", src, format="voc", bump="auto")
    assert fourth.version == "1.2.0"
    added = {p: i for p, i in _ids(fourth).items() if p not in ids1}
    assert sorted(added.values()) == [11, 12]  # not 9, 10: those meant other images
    assert fourth.manifest().tables["images"]["ids_issued"] == 12

    # From the older 1.1.1, after 1.2.0 exists: 11 and 12 are taken in the dataset's history.
    branch = subset(tmp_path / "branch", [n for n in names[:10] if f"JPEGImages/{n}.jpg" not in top] + [names[12]])
    fifth = vault.snapshot("cells", branch, format="voc", version="1.3.0", parent="1.1.1")
    assert _ids(fifth)[f"JPEGImages/{names[12]}.jpg"] == 13
    assert {p: i for p, i in _ids(fifth).items() if p != f"JPEGImages/{names[12]}.jpg"} == _ids(third)


def _waiting_on(path: Path) -> int:
    """How many lock requests on ``path`` wait in the kernel (/proc/locks lists waiters as "->")."""
    import os

    st = os.stat(path)
    dev = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    with open("/proc/locks") as f:
        return sum(1 for line in f if "->" in line and line.split()[-3] == dev)


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs Linux /proc/locks to see the writers wait")
def test_two_snapshots_committing_at_once_never_hand_out_the_same_id(vault, tmp_path):
    """Two snapshots of one dataset (1.1.0 and 1.2.0, both from 1.0.0, each adding an image) choose
    their ids, then wait for the gc lock this test holds, so both commit with the same view of
    the history; the second to commit must notice the ids the first handed out, and number above."""
    import fcntl
    import os
    import time

    names = bccd_names()
    vault.snapshot("cells", subset(tmp_path / "base", names[:6]), format="voc", version="1.0.0")
    srcs = {"1.1.0": subset(tmp_path / "a", [*names[:6], names[6]]),
            "1.2.0": subset(tmp_path / "b", [*names[:6], names[7]])}
    lock = Path(vault.store.root) / "gc.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)  # what gc holds while it deletes; commits wait for it
    procs = []
    try:
        for version, src in srcs.items():
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "lensvault.cli.main", "--vault", str(vault.root), "dataset", "snapshot",
                 "cells", str(src), "--format", "voc", "--version", version],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        deadline = time.monotonic() + 120
        while _waiting_on(lock) < 2:  # both have chosen their ids and wait to commit
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            assert time.monotonic() < deadline, "the snapshots never reached their commit"
            time.sleep(0.01)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    for p in procs:
        _out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    a, b = vault.dataset("cells@1.1.0"), vault.dataset("cells@1.2.0")
    assert {i for p, i in _ids(a).items() if p != f"JPEGImages/{names[6]}.jpg"} == set(range(1, 7))
    new = {_ids(a)[f"JPEGImages/{names[6]}.jpg"], _ids(b)[f"JPEGImages/{names[7]}.jpg"]}
    assert new == {7, 8}  # one each, never the same id for two images
    marks = {a.manifest().tables["images"]["ids_issued"], b.manifest().tables["images"]["ids_issued"]}
    assert marks == {7, 8}
    # The next version numbers above both.
    c = vault.snapshot("cells", subset(tmp_path / "c", [*names[:6], names[8]]), format="voc", version="1.3.0",
                       parent="1.0.0")
    assert _ids(c)[f"JPEGImages/{names[8]}.jpg"] == 9
