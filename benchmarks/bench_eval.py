"""`lensvault eval` as a whole process against the plain pycocotools script, bbox and segm.

    python benchmarks/bench_eval.py [--images 5000] [--boxes 40000] [--detections 100000]
                                    [--repeats 3] [--types bbox,segm] [--work DIR] [--memory]

``--work DIR`` keeps the generated data; running again with the same DIR reuses it.

Builds (untimed) a vault with one dataset version of generated 640x480 images and COCO boxes,
each box also a polygon (an octagon inside it), exports its COCO ground truth, and writes
detections (jittered ground truth, class confusions, false positives) as COCO results with a
``bbox`` or a polygon ``segmentation``. Then times, in fresh processes, medians of ``repeats``:

* the plain script: ``COCO(gt)``, ``loadRes(preds)``, ``COCOeval(...).evaluate/accumulate/summarize``
  (pycocotools), polygons turned into RLE first for segm (pycocotools' loadRes measures RLE only);
* ``lensvault eval --dataset bench@1.0.0 --split all --task detection|instance-segmentation
  --predictions preds.json --json`` (records the evaluation too).

Wall time of each whole process and its peak RSS (``wait4``), both run with bytecode caching on
as in a user's shell, and the 1-minute load average after each pair; the 12 COCO stats of both
must agree to 1e-9. Prints one JSON document.

Peak RSS from ``wait4`` is the largest single process's (a forked child's memory is not added to
its parent's). ``--memory`` adds one more, untimed, run of each side sampled every 20 ms for the
sum of the proportional set sizes (Pss: pages shared between a parent and its forked children
counted once) of the process and its children: the memory the whole command takes at once.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PLAIN = r"""
import json, sys
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from pycocotools import mask as mask_utils
gt_path, preds_path, iou = sys.argv[1:4]
gt = COCO(gt_path)
preds = json.load(open(preds_path))
if iou == "segm":
    size = {i["id"]: (i["height"], i["width"]) for i in gt.dataset["images"]}
    for p in preds:
        h, w = size[p["image_id"]]
        p["segmentation"] = mask_utils.merge(mask_utils.frPyObjects(p["segmentation"], h, w))
dt = gt.loadRes(preds)
e = COCOeval(gt, dt, iou)
e.evaluate(); e.accumulate(); e.summarize()
print("STATS " + json.dumps([float(s) for s in e.stats]))
"""


def _user_env() -> dict[str, str]:
    """The environment a user's shell has: bytecode caching on (a developer shell may turn it off,
    and then every run of either side compiles its imports again)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _run(cmd: list[str], cwd: Path) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MB (this process's and its children's, from wait4) and stdout of one
    whole process."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=err, text=True, env=_user_env())
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{err.read()[-3000:]}")
        return wall, usage.ru_maxrss / 1024, out.read()


def _tree_pss_peak_mb(cmd: list[str], cwd: Path) -> float:
    """The largest sum of Pss over a process and its descendants, sampled every 20 ms (Linux)."""

    def children(pid: int) -> list[int]:
        out: list[int] = []
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    out += [int(x) for x in f.read().split()]
        except OSError:
            pass
        return out

    def pss_kb(pid: int) -> int:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                return next((int(line.split()[1]) for line in f if line.startswith("Pss:")), 0)
        except OSError:
            return 0

    peak = 0
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_user_env())
    while proc.poll() is None:
        tree = [proc.pid]
        for pid in tree:  # grows while it is walked: children of children
            tree += children(pid)
        peak = max(peak, sum(pss_kb(pid) for pid in tree))
        time.sleep(0.02)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed")
    return peak / 1024


def _octagon(x, y, w, h):
    cx, cy = w * 0.25, h * 0.25
    return [x + cx, y, x + w - cx, y, x + w, y + cy, x + w, y + h - cy, x + w - cx, y + h, x + cx, y + h,
            x, y + h - cy, x, y + cy]


def build(work: Path, images: int, boxes: int, detections: int) -> dict:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    src = work / "src"
    (src / "images").mkdir(parents=True)
    blank = Image.new("RGB", (640, 480), (90, 90, 90))
    coco_images, anns = [], []
    for i in range(images):
        name = f"images/{i:05d}.png"
        blank.save(src / name, optimize=False, compress_level=1)
        coco_images.append({"id": i + 1, "file_name": f"{i:05d}.png", "width": 640, "height": 480})
    per_image = rng.multinomial(boxes, np.ones(images) / images)
    for i, n in enumerate(per_image):
        for _ in range(n):
            w, h = rng.uniform(8, 160, size=2)
            x, y = rng.uniform(0, 640 - w), rng.uniform(0, 480 - h)
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": int(rng.integers(1, 11)),
                         "bbox": [float(x), float(y), float(w), float(h)], "area": float(w * h), "iscrowd": 0,
                         "segmentation": [[float(v) for v in _octagon(x, y, w, h)]]})
    cats = [{"id": c, "name": f"class{c}"} for c in range(1, 11)]
    (src / "annotations").mkdir()
    (src / "annotations" / "instances_default.json").write_text(
        json.dumps({"images": coco_images, "annotations": anns, "categories": cats}))
    vault_dir = work / "vault"
    vault_dir.mkdir()
    lv = [sys.executable, "-m", "lensvault.cli.main"]
    subprocess.run([*lv, "init"], cwd=vault_dir, check=True, capture_output=True)
    subprocess.run([*lv, "dataset", "snapshot", "bench", str(src), "--format", "coco", "--version", "1.0.0"],
                   cwd=vault_dir, check=True, capture_output=True)
    subprocess.run([*lv, "dataset", "export", "bench@1.0.0", str(work / "export"), "--format", "coco"],
                   cwd=vault_dir, check=True, capture_output=True)
    gt_file = next((work / "export" / "annotations").glob("*.json"))
    gt = json.loads(gt_file.read_text())
    preds: dict[str, list] = {"bbox": [], "segm": []}
    for k in range(detections):
        a = gt["annotations"][k % len(gt["annotations"])] if k < 0.8 * detections else None
        if a is not None:
            x, y, w, h = a["bbox"]
            j = rng.normal(0, 0.1, size=4)
            x, y, w, h = x + j[0] * w, y + j[1] * h, max(2.0, w * (1 + j[2])), max(2.0, h * (1 + j[3]))
            image_id, cat = a["image_id"], (a["category_id"] if rng.random() > 0.1 else int(rng.integers(1, 11)))
        else:
            w, h = rng.uniform(8, 160, size=2)
            x, y = rng.uniform(0, 640 - w), rng.uniform(0, 480 - h)
            image_id, cat = int(rng.integers(1, images + 1)), int(rng.integers(1, 11))
        base = {"image_id": image_id, "category_id": cat, "score": float(rng.uniform(0.05, 1.0))}
        preds["bbox"].append({**base, "bbox": [float(x), float(y), float(w), float(h)]})
        preds["segm"].append({**base, "segmentation": [[float(v) for v in _octagon(x, y, w, h)]]})
    for kind, rows in preds.items():
        (work / f"preds_{kind}.json").write_text(json.dumps(rows))
    (work / "plain.py").write_text(PLAIN)
    return {"gt": str(gt_file), "vault": str(vault_dir), "annotations": len(gt["annotations"])}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--boxes", type=int, default=40000)
    ap.add_argument("--detections", type=int, default=100000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--types", default="bbox,segm")
    ap.add_argument("--work")
    ap.add_argument("--memory", action="store_true",
                    help="one more untimed run of each side for the peak Pss of its whole process tree")
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-eval-"))
    started = time.perf_counter()
    saved = work / "setup.json"
    if saved.is_file():  # --work of an earlier run: its data is reused (the sizes are the earlier run's)
        setup = json.loads(saved.read_text())
    else:
        setup = build(work, args.images, args.boxes, args.detections)
        saved.write_text(json.dumps(setup))
    results: dict = {"images": args.images, "boxes": setup["annotations"], "detections": args.detections,
                     "repeats": args.repeats, "setup_seconds": round(time.perf_counter() - started, 1), "types": {}}
    for iou in args.types.split(","):
        task = "detection" if iou == "bbox" else "instance-segmentation"
        preds = work / f"preds_{iou}.json"
        plain_cmd = [sys.executable, str(work / "plain.py"), setup["gt"], str(preds), iou]
        lv_cmd = [sys.executable, "-m", "lensvault.cli.main", "eval", "--dataset", "bench@1.0.0", "--split", "all",
                  "--task", task, "--predictions", str(preds), "--json"]
        plain, lens, load = [], [], []
        for _ in range(args.repeats):
            plain.append(_run(plain_cmd, work))
            lens.append(_run(lv_cmd, Path(setup["vault"])))
            load.append(round(os.getloadavg()[0], 1))  # other work on the machine slows both sides
        plain_stats = json.loads(plain[-1][2].split("STATS ", 1)[1])
        overall = json.loads(lens[-1][2])["overall"]
        ours = [-1.0 if v is None else v for v in overall.values()]
        diff = max(abs(a - b) for a, b in zip(plain_stats, ours))
        p_wall = statistics.median(w for w, _, _ in plain)
        l_wall = statistics.median(w for w, _, _ in lens)
        results["types"][iou] = {
            "pycocotools_script_s": round(p_wall, 2), "lensvault_eval_s": round(l_wall, 2),
            "ratio": round(l_wall / p_wall, 3),
            "pycocotools_script_peak_mb": round(max(m for _, m, _ in plain)),
            "lensvault_eval_peak_mb": round(max(m for _, m, _ in lens)),
            "max_stat_difference": diff, "AP": overall["AP"], "backend": json.loads(lens[-1][2]).get("backend"),
            "load_average_1min": load,
            "runs_s": {"pycocotools_script": [round(w, 2) for w, _, _ in plain],
                       "lensvault_eval": [round(w, 2) for w, _, _ in lens]},
        }
        if args.memory:
            results["types"][iou]["peak_pss_of_process_tree_mb"] = {
                "pycocotools_script": round(_tree_pss_peak_mb(plain_cmd, work)),
                "lensvault_eval": round(_tree_pss_peak_mb(lv_cmd, Path(setup["vault"])))}
        print(json.dumps({iou: results["types"][iou]}), file=sys.stderr, flush=True)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
