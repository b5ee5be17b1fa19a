"""Image labels: ImageFolder and label-file import, the version's diff and bump, export back,
VisionDataset targets, and the model task rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from lensvault.annotations import load
from lensvault.errors import LensVaultError

BCCD = Path(__file__).resolve().parents[1] / "data" / "bccd" / "BCCD" / "JPEGImages"


def _folder(root: Path, layout: dict[str, list[str]]) -> Path:
    """Real BCCD JPEGs laid out as ``{"train/RBC": ["a", "b"], ...}``."""
    sources = sorted(BCCD.glob("*.jpg"))
    n = 0
    for folder, names in layout.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            (root / folder / f"{name}.jpg").write_bytes(sources[n].read_bytes())
            n += 1
    return root


LAYOUT = {"train/RBC": ["r1", "r2", "r3"], "train/WBC": ["w1", "w2"], "val/RBC": ["r4"], "val/WBC": ["w3", "w4"]}


def test_imagefolder_classes_splits_and_whole_image_labels(tmp_path):
    src = _folder(tmp_path / "cells", {**LAYOUT, "loose": []})
    Image.new("RGB", (4, 4)).save(src / "stray.png")  # outside a class folder
    aset = load(src, format="imagefolder")
    assert aset.classes.names == ("RBC", "WBC")
    rows = aset.annotations.to_pylist()
    assert {r["kind"] for r in rows} == {"label"} and len(rows) == 8
    im = {r["path"]: r for r in aset.images.to_pylist()}
    first = next(r for r in rows if r["image"] == "val/WBC/w3.jpg")
    assert first["class_id"] == 1 and (first["x"], first["y"]) == (0, 0)
    assert (first["w"], first["h"]) == (im["val/WBC/w3.jpg"]["width"], im["val/WBC/w3.jpg"]["height"]) == (640, 480)
    assert im["train/RBC/r1.jpg"]["split"] == "train"
    assert any(f.code == "unlabeled-image" and "stray.png" in f.message for f in aset.warnings())


def test_label_file_csv_json_multilabel_and_refusals(tmp_path):
    src = _folder(tmp_path / "cells", {"imgs": ["a", "b", "c"]})
    (src / "labels.csv").write_text("path,label,split\nimgs/a.jpg,RBC,train\nimgs/b.jpg,RBC;WBC,val\n")
    aset = load(src, format="labels")
    labels = [(r["image"], aset.classes.name_of(r["class_id"])) for r in aset.annotations.to_pylist()]
    assert labels == [("imgs/a.jpg", "RBC"), ("imgs/b.jpg", "RBC"), ("imgs/b.jpg", "WBC")]
    assert any(f.code == "unlabeled-image" for f in aset.warnings())  # c.jpg is in no row
    (src / "labels.csv").unlink()
    (src / "labels.json").write_text(json.dumps([{"path": "imgs/c.jpg", "label": ["WBC"]}]))
    assert [r["image"] for r in load(src, format="labels").annotations.to_pylist()] == ["imgs/c.jpg"]
    (src / "labels.json").write_text(json.dumps({"imgs/zebra.jpg": "RBC", "imgs/a.jpg": "WBC"}))
    with pytest.raises(LensVaultError, match=r"'imgs/zebra\.jpg' is not an image below the root"):
        load(src, format="labels")
    (src / "labels.json").unlink()
    (src / "labels.csv").write_text("file,class\nimgs/a.jpg,RBC\n")
    with pytest.raises(LensVaultError, match="not path,label"):
        load(src, format="labels")


def test_versions_diff_bump_export_and_targets(vault, tmp_path):
    src = _folder(tmp_path / "cells", LAYOUT)
    v1 = vault.snapshot("cells", src, format="imagefolder", version="1.0.0")
    rows = [(p.relative_to(src).as_posix(), p.parent.name, p.parts[-3]) for p in sorted(src.rglob("*.jpg"))]
    # one label fixed, one added: a PATCH
    fixed = [(p, "WBC" if p == "val/RBC/r4.jpg" else c, s) for p, c, s in rows]
    lines = [f"{p},{c + (';RBC' if p == 'train/WBC/w1.jpg' else '')},{s}" for p, c, s in fixed]
    (src / "labels.csv").write_text("path,label,split\n" + "\n".join(lines) + "\n")
    v2 = vault.snapshot("cells", src, format="labels", bump="auto")
    assert v2.ref == "cells@1.0.1"
    diff = vault.compare_datasets(v1.ref, v2.ref).to_dict()
    assert diff["annotations"]["counts"]["relabeled"] == 1 and diff["annotations"]["counts"]["added"] == 1
    assert diff["annotations"]["relabeled"][0]["image"] == "val/RBC/r4.jpg"
    assert "2 image labels changed in 2 images" in diff["summary"]
    # new images: MINOR; a class renamed: MAJOR
    _folder(tmp_path / "more", {"val/WBC": ["w9"]})
    (src / "val" / "WBC" / "w9.jpg").write_bytes((tmp_path / "more" / "val" / "WBC" / "w9.jpg").read_bytes())
    (src / "labels.csv").write_text((src / "labels.csv").read_text() + "val/WBC/w9.jpg,WBC,val\n")
    assert vault.snapshot("cells", src, format="labels", bump="auto").ref == "cells@1.1.0"
    (src / "labels.csv").write_text((src / "labels.csv").read_text().replace(",WBC", ",Leukocyte").replace(";WBC", ";Leukocyte"))
    assert vault.snapshot("cells", src, format="labels", bump="auto").ref == "cells@2.0.0"

    details = vault.dataset_details(v2.ref).to_dict()
    assert "label" in json.dumps(details)
    out = vault.export(v1.ref, tmp_path / "ex", format="imagefolder")
    assert out is not None and (tmp_path / "ex" / "val" / "RBC" / "r4.jpg").is_file()
    with pytest.raises(LensVaultError, match="more than one label"):
        vault.export(v2.ref, tmp_path / "ex2", format="imagefolder")
    vault.export(v2.ref, tmp_path / "ex3", format="labels")
    back = load(tmp_path / "ex3", format="labels")
    assert sorted((r["image"], r["class_id"]) for r in back.annotations.to_pylist()) == sorted(
        (r["image"], r["class_id"]) for r in vault.dataset(v2.ref).annotations().to_pylist())
    vault.export(v2.ref, tmp_path / "coco", format="coco")
    coco = json.loads(next((tmp_path / "coco" / "annotations").glob("*.json")).read_text())
    assert coco["annotations"] == []  # labels are no boxes

    from lensvault.torch import VisionDataset

    ds = VisionDataset(vault.dataset(v2.ref), split="val")
    by_path = {ds.target(i)["path"]: ds.target(i) for i in range(len(ds))}
    labels = by_path["val/RBC/r4.jpg"]["labels"]
    assert list(labels) == [1] and len(by_path["val/RBC/r4.jpg"]["boxes"]) == 0


def test_task_change_is_major_and_outputs_change_is_major():
    from lensvault.registry.rules import Facts, required_bump

    base = {"dataset": "d@1.0.0", "config_id": "C-01", "config": {}, "code_commit": "a",
            "label_map": {"classes": []}, "preprocess": None, "postprocess": None, "thresholds": {},
            "weights": ("w",)}
    det = Facts(**base, task="detection", outputs={"task": "detection", "outputs": ["boxes", "labels", "scores"]})
    seg = Facts(**base, task="instance-segmentation",
                outputs={"task": "instance-segmentation", "outputs": ["boxes", "masks", "labels", "scores"]})
    decision = required_bump(det, seg)
    assert decision.required == "major" and "task changed: detection → instance-segmentation" in decision.reasons["major"]
    kp_a = Facts(**base, task="keypoints", outputs={"task": "keypoints", "keypoints": {"1": ["nose", "eye"]}})
    kp_b = Facts(**base, task="keypoints", outputs={"task": "keypoints", "keypoints": {"1": ["nose", "ear"]}})
    assert required_bump(kp_a, kp_b).required == "major"
    old = Facts(**base)  # a bundle written before tasks were recorded
    assert "major" not in required_bump(old, det).reasons
