"""The whole loop for each task: import real samples, snapshot, fix a label (PATCH), train two
models (recorded runs), evaluate both on the fixed version, register both (the task in the
bundle, its headline metric in the release notes), and `why` names the data change."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

DATA = Path(__file__).resolve().parents[1] / "data"
SAMPLES = DATA / "format-samples"
GIT_ENV = {"GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "t@example.com"}
TRAIN = """\
import os, sys
out = os.environ["LENSVAULT_OUTPUT_DIR"]
with open(os.path.join(out, "weights.bin"), "wb") as f:
    f.write(("weights of " + os.environ["LENSVAULT_DATASET"]).encode())
"""


def _git(root: Path, *args: str) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("LENSVAULT_")}, **GIT_ENV}
    subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)


# -- the real samples, and one label fixed in each ---------------------------------------------


def _classification(src: Path) -> tuple[str, str]:
    """BCCD images as an ImageFolder, each in the folder of the first cell its XML names."""
    bccd = DATA / "bccd" / "BCCD"
    for n, xml in enumerate(sorted((bccd / "Annotations").glob("*.xml"))[:16]):
        cls = ET.parse(xml).getroot().find("object").findtext("name").strip()
        split = "val" if n % 2 else "train"
        (src / split / cls).mkdir(parents=True, exist_ok=True)
        shutil.copy(bccd / "JPEGImages" / f"{xml.stem}.jpg", src / split / cls / f"{xml.stem}.jpg")
    return "imagefolder", "val"


def _fix_classification(src: Path) -> None:
    """A labeller moves one val image to the class it really is: a label file from the folders."""
    rows = []
    for p in sorted(src.rglob("*.jpg")):
        split, cls = p.relative_to(src).parts[:2]
        rows.append((p.relative_to(src).as_posix(), cls, split))
    path, cls, split = next(r for r in rows if r[2] == "val")
    fixed = "WBC" if cls != "WBC" else "RBC"
    rows = [(p, fixed if p == path else c, s) for p, c, s in rows]
    (src / "labels.csv").write_text("path,label,split\n" + "".join(f"{p},{c},{s}\n" for p, c, s in rows))


def _semantic(src: Path) -> tuple[str, str | None]:
    shutil.copytree(SAMPLES / "common_semantic_segmentation_dataset" / "dataset", src)
    return "masks", None


def _fix_semantic(src: Path) -> None:
    """One pixel of one class mask repainted with another class's colour."""
    path = src / "masks" / "0001.png"
    mask = np.array(Image.open(path).convert("RGB"))
    mask[0, 0] = (64, 128, 64)  # Animal
    Image.fromarray(mask, "RGB").save(path)


def _coco(sample: str):
    def make(src: Path) -> tuple[str, str]:
        shutil.copytree(SAMPLES / "coco_dataset" / sample, src)
        return "coco", "val"
    return make


def _fix_coco(task_file: str):
    def fix(src: Path) -> None:
        """The val file's first annotation changes class (1 ↔ 2)."""
        path = src / "annotations" / task_file
        doc = json.loads(path.read_text())
        doc["annotations"][0]["category_id"] = 3 - doc["annotations"][0]["category_id"]
        path.write_text(json.dumps(doc))
    return fix


# -- predictions of two models ---------------------------------------------------------------


def _predictions(task: str, vault, ref: str, split: str | None, dest: Path, good: bool) -> Path:
    from lensvault.evaluations.tasks import task_ground_truth

    gt = task_ground_truth(vault.dataset(ref), split)
    if task == "classification":
        names = {c["id"]: c["name"] for c in gt["categories"]}
        lines = ["image,label,score"]
        for n, im in enumerate(gt["images"]):
            true = names[gt["labels"][im["id"]][0]]
            wrong = next(v for v in names.values() if v != true)
            lines.append(f"{im['file_name']},{true if good or n % 2 else wrong},0.9")
        dest.write_text("\n".join(lines) + "\n")
        return dest
    if task == "semantic-segmentation":
        from lensvault.evaluations.semantic import rasterize_ground_truth

        by_image: dict = {}
        for a in gt["annotations"]:
            by_image.setdefault(a["image_id"], []).append(a)
        for n, im in enumerate(gt["images"]):
            mask = rasterize_ground_truth(im, by_image.get(im["id"], []), fill=255)
            mask[mask == 255] = 0
            if not good:
                mask[0, : 1 + n] = 5  # Road where it is not
            out = dest / (im["file_name"].rsplit(".", 1)[0] + ".png")
            out.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(mask.astype(np.uint8), "L").save(out)
        return dest
    preds = []
    for a in gt["annotations"]:
        p = {"image_id": a["image_id"], "category_id": a["category_id"], "score": 0.9}
        if task == "instance-segmentation":
            p["segmentation"] = a["segmentation"] if good or a["rle"] else [
                [v + 0.5 for v in ring] for ring in a["segmentation"]]
            if not p["segmentation"]:
                continue
        elif a.get("keypoints"):
            p["keypoints"] = [v + (0 if good or i % 3 == 2 else 1.5) for i, v in enumerate(a["keypoints"])]
        else:
            continue
        preds.append(p)
    dest.write_text(json.dumps(preds))
    return dest


TASKS = {
    "classification": (_classification, _fix_classification, "labels", {}),
    "semantic-segmentation": (_semantic, _fix_semantic, "masks", {}),
    "instance-segmentation": (_coco("coco_instances"), _fix_coco("instances_val.json"), "coco", {}),
    "keypoints": (_coco("coco_person_keypoints"), _fix_coco("person_keypoints_val.json"), "coco",
                  {"oks_sigmas": [0.05, 0.05, 0.05]}),
}


@pytest.mark.parametrize("task", list(TASKS))
def test_the_loop_for_each_task(tmp_path, task, monkeypatch):
    import lensvault

    for k, v in GIT_ENV.items():
        monkeypatch.setenv(k, v)
    make, fix, fix_format, options = TASKS[task]
    root = tmp_path / "project"
    root.mkdir()
    _git(root, "init", "-q", "-b", "main")
    (root / "train.py").write_text(TRAIN)
    (root / "train.yaml").write_text("seed: 7\nlr: 0.01\n")
    (root / ".gitignore").write_text("/.lensvault/\n/raw/\n/runs/\n/preds/\n")
    src = root / "raw"
    fmt, split = make(src)
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "code")
    vault = lensvault.init(root)
    try:
        vault.add_config(root / "train.yaml", "C-01")
        v1 = vault.snapshot("data", src, version="1.0.0", format=fmt)
        _git(root, "add", "-A")
        _git(root, "commit", "-qm", "data 1.0.0")
        fix(src)
        v2 = vault.snapshot("data", src, bump="auto", format=fix_format)
        assert v2.ref == "data@1.0.1"  # a fixed label is a PATCH
        _git(root, "add", "-A")
        _git(root, "commit", "-qm", "data 1.0.1")
        diff = vault.compare_datasets(v1.ref, v2.ref).to_dict()
        assert diff["suggested_bump"] == "patch"
        counts = diff["annotations"]["counts"]
        assert sum(counts[k] for k in ("relabeled", "moved", "added", "removed")) >= 1

        runs = []
        for ref in (v1.ref, v2.ref):
            with open(os.devnull, "wb") as sink:
                res = vault.run([sys.executable, "train.py"], dataset=ref, config="C-01", cwd=root, stream=sink)
            assert res.status == "succeeded"
            runs.append(res.run_id)
        (root / "preds").mkdir()
        evals = []
        for n, (run_id, good) in enumerate(zip(runs, (False, True))):
            preds = _predictions(task, vault, v2.ref, split, root / "preds" / (f"m{n}" + (
                "" if task == "semantic-segmentation" else ".csv" if task == "classification" else ".json")), good)
            evals.append(vault.evaluate(run=run_id, dataset=v2.ref, split=split, predictions=preds, task=task,
                                        **options).to_dict())
        for e in evals:
            assert e["task"] == task and e["per_class"]  # per class, recorded
        listed = vault.evaluations(dataset=v2.ref).to_dict()
        assert [e["eval_id"] for e in listed] == [e["eval_id"] for e in evals]
        assert listed[0]["overall"] == evals[0]["overall"]  # what was recorded is what was returned
        from lensvault.evaluations.tasks import HEADLINE

        key = HEADLINE[task][0]
        assert evals[1]["overall"][key] > evals[0]["overall"][key]

        m1 = vault.register_model("model", run=runs[0], weights=root / "runs" / runs[0] / "weights.bin",
                                  version="1.0.0").to_dict()
        m2 = vault.register_model("model", run=runs[1], weights=root / "runs" / runs[1] / "weights.bin",
                                  bump="auto").to_dict()
        assert m1["task"] == m2["task"] == task
        assert m2["version"] == "1.1.0"  # the dataset changed: MINOR
        assert f"**Task:** {task}" in m2["release_notes"]
        assert f"**Headline:** {key} " in m2["release_notes"]

        why = vault.why("model@1.0.0", "model@1.1.0").to_dict()
        assert why["data"]["changed"] and why["data"]["a"] == "data@1.0.0" and why["data"]["b"] == "data@1.0.1"
        assert why["explanations"][0]["factor"] == "data", why["explanations"]
    finally:
        vault.close()
