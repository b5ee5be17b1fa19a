"""Peak RSS of the commands that read a whole vision version: ``dataset export``, ``dataset check``
and ``VisionDataset`` start-up (made and its first item read), at two sizes, to get the growth
per image.

    python benchmarks/bench_version_walks.py --images 50000 200000 [--work /tmp/walks-bench]
                                              [--steps export-coco export-yolo check vision]

Each size gets generated images (16x16 PNGs of random pixels: distinct content, and distinct
perceptual hashes, so ``check`` finds no near duplicates to list) with a COCO file of ~2 boxes
an image, snapshotted (hardlinks) with a 70/20/10 split. Peak RSS is ``ru_maxrss`` from
``wait4`` (the command or any process it waited for); the load average is printed beside each
number (the machine is shared). Prints one line per command and a JSON summary with the growth
per image (KB) between the two sizes.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

LV = str(Path(sys.executable).parent / "lensvault")

VISION_SCRIPT = """
import sys
from lensvault.torch import VisionDataset
import lensvault
ds = VisionDataset(sys.argv[2], vault=lensvault.open(sys.argv[1]), fetch=False)
image, target = ds[0]
print(len(ds), target["image_id"])
"""


def generate(root: Path, n: int, seed: int = 0) -> Path:
    """COCO layout: images/ (16x16 PNGs, 500 a folder) + annotations/instances.json."""
    import numpy as np
    from PIL import Image

    stamp = root / ".ok"
    if stamp.exists():
        return root
    if root.exists():
        shutil.rmtree(root)
    rng = np.random.default_rng(seed)
    images = []
    for i in range(n):
        name = f"images/d{i // 500:04d}/img_{i:07d}.png"
        if i % 500 == 0:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(buf, format="PNG")
        (root / name).write_bytes(buf.getvalue())
        images.append({"id": i + 1, "file_name": name.removeprefix("images/"), "width": 16, "height": 16})
    n_boxes = 2 * n
    img = rng.integers(1, n + 1, n_boxes)
    xy = rng.uniform(0, 8, (n_boxes, 2)).round(2)
    wh = rng.uniform(1, 8, (n_boxes, 2)).round(2)
    cat = rng.integers(1, 11, n_boxes)
    anns = [{"id": k + 1, "image_id": int(img[k]), "category_id": int(cat[k]),
             "bbox": [float(xy[k, 0]), float(xy[k, 1]), float(wh[k, 0]), float(wh[k, 1])],
             "area": float(wh[k, 0] * wh[k, 1]), "iscrowd": 0} for k in range(n_boxes)]
    cats = [{"id": c, "name": f"class{c}", "supercategory": ""} for c in range(1, 11)]
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / "instances.json").write_text(
        json.dumps({"images": images, "annotations": anns, "categories": cats}))
    stamp.write_text("ok")
    return root


def run(cmd: list[str], log_name: str) -> dict:
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    with open(os.devnull, "wb") as null:
        p = subprocess.Popen(cmd, stdout=null, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(p.pid, 0)
        err = p.stderr.read().decode(errors="replace") if p.stderr else ""
    rc = os.waitstatus_to_exitcode(status)
    out = {"s": round(time.perf_counter() - t0, 1), "rss_mb": round(usage.ru_maxrss / 1024, 1),
           "load": [round(load, 2), round(os.getloadavg()[0], 2)], "rc": rc}
    print(f"{log_name:>24}: {out['s']:7.1f} s {out['rss_mb']:8.1f} MB load {out['load']} rc={rc}", flush=True)
    if rc not in (0, 1):  # check exits 1 when it finds a leak
        raise SystemExit(f"{' '.join(cmd)} failed (rc={rc}):\n{err[-3000:]}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, nargs="+", default=[50_000, 200_000])
    ap.add_argument("--work", type=Path, default=Path("/tmp/walks-bench"))
    ap.add_argument("--steps", nargs="+", default=["export-coco", "export-yolo", "check", "vision"])
    args = ap.parse_args()
    results: dict[int, dict] = {}
    for n in args.images:
        base = args.work / str(n)
        data = generate(base / "data", n)
        vault = base / "vault"
        lv = [LV, "--vault", str(vault)]
        if not (vault / ".ok").exists():
            shutil.rmtree(vault, ignore_errors=True)
            subprocess.run([LV, "init", str(vault)], check=True, stdout=subprocess.DEVNULL)
            run([*lv, "dataset", "snapshot", "v", str(data), "--format", "coco", "--split", "70/20/10", "--seed", "1",
                 "--version", "1.0.0", "--link", "hardlink"], f"snapshot {n}")
            (vault / ".ok").write_text("ok")
        got: dict[str, dict] = {}
        for step in args.steps:
            out = base / "out"
            shutil.rmtree(out, ignore_errors=True)
            if step.startswith("export-"):
                cmd = [*lv, "dataset", "export", "v@1.0.0", str(out), "--format", step.split("-", 1)[1],
                       "--link", "hardlink"]
            elif step == "check":
                cmd = [*lv, "dataset", "check", "v@1.0.0"]
            else:
                cmd = [sys.executable, "-c", VISION_SCRIPT, str(vault), "v@1.0.0"]
            got[step] = run(cmd, f"{step} {n}")
            shutil.rmtree(out, ignore_errors=True)
        results[n] = got
    if len(args.images) >= 2:
        lo, hi = min(args.images), max(args.images)
        growth = {s: round((results[hi][s]["rss_mb"] - results[lo][s]["rss_mb"]) * 1024 / (hi - lo), 2)
                  for s in args.steps}
        print(json.dumps({"results": results, "kb_per_image": growth}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
