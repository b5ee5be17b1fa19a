"""Import and snapshot a generated COCO dataset (20,000 images, 200,000 boxes), side by side
with pycocotools loading the same annotation file; and the annotation-level diff of two
such versions with 5% of the boxes changed.

    python benchmarks/bench_vision_import.py [--images 20000] [--boxes 200000] [--workdir DIR]
                                             [--jpeg] [--no-diff]

``--jpeg`` makes the images 640x480 photographs-like JPEGs (smooth shading and sensor-like
noise, ~100 KB each) instead of tiny PNGs, so judging every image by its decoder (the end-marker
check, a decode where it fails) is measured at a realistic size; ``import_s`` is the annotation
import alone (``lensvault.annotations.load``), the part that judges images.

Target (issue "Vision-aware datasets"): import + snapshot <= 2 x pycocotools' load + hashing
the images; diff < 3 s. Prints one JSON line. Everything runs in this process, after one
warm-up of each side, so interpreter start-up is excluded for both. LensVault stores the images
by hardlink (the budget counts hashing, not copying).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import struct
import sys
import tempfile
import time
import zlib
from pathlib import Path


def generate(root: Path, n_images: int, n_boxes: int, seed: int = 0, jpeg: bool = False) -> Path:
    """COCO layout: images/ (tiny distinct PNG files, or photo-like JPEGs) + annotations/instances.json."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 120, 150)).save(buf, format="PNG")
    png = buf.getvalue()
    if jpeg:
        yy, xx = np.mgrid[0:480, 0:640].astype(np.float32)
        shading = np.stack([xx / 640 * 160 + 40, yy / 480 * 140 + 50, (xx + yy) / 1120 * 120 + 60], axis=-1)
    images = []
    for i in range(n_images):
        if jpeg:
            name = f"img_{i:06d}.jpg"
            tint = rng.uniform(-30, 30, 3).astype(np.float32)
            noise = rng.normal(0, 12, (480, 640, 1)).astype(np.float32)
            pixels = np.clip(shading + tint + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / "images" / name, format="JPEG", quality=90)
        else:
            name = f"img_{i:06d}.png"
            # A unique tEXt chunk before IEND makes every file distinct content and keeps it a
            # complete PNG (bytes after IEND would make every image look cut short, and decoded).
            text = b"tEXt" + b"n\x00" + str(i).encode()
            chunk = struct.pack(">I", len(text) - 4) + text + struct.pack(">I", zlib.crc32(text))
            (root / "images" / name).write_bytes(png[:-12] + chunk + png[-12:])
        images.append({"id": i + 1, "file_name": name, "width": 640, "height": 480,
                       "time_of_day": "night" if i % 3 == 0 else "day"})
    img = rng.integers(1, n_images + 1, n_boxes)
    x, y = rng.uniform(0, 560, n_boxes).round(2), rng.uniform(0, 400, n_boxes).round(2)
    w, h = rng.uniform(8, 80, n_boxes).round(2), rng.uniform(8, 80, n_boxes).round(2)
    cat = rng.integers(1, 21, n_boxes)
    anns = [{"id": k + 1, "image_id": int(img[k]), "category_id": int(cat[k]),
             "bbox": [float(x[k]), float(y[k]), float(w[k]), float(h[k])], "area": float(w[k] * h[k]), "iscrowd": 0}
            for k in range(n_boxes)]
    cats = [{"id": c, "name": f"class{c}", "supercategory": ""} for c in range(1, 21)]
    (root / "annotations").mkdir()
    path = root / "annotations" / "instances.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return path


def time_pycocotools(ann: Path) -> float:
    import contextlib

    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(open(os.devnull, "w")):
        t = time.perf_counter()
        COCO(str(ann))
        return time.perf_counter() - t


def time_hashing(root: Path) -> float:
    from lensvault.hashing import hash_file, hash_files

    paths = [str(p) for p in sorted((root / "images").iterdir())]
    t = time.perf_counter()
    for _ in hash_files(paths, fn=hash_file):
        pass
    return time.perf_counter() - t


def time_import(root: Path) -> float:
    from lensvault.annotations import load

    t = time.perf_counter()
    load(root, format="coco")
    return time.perf_counter() - t


def time_lensvault(root: Path, vault_dir: Path, version: str) -> float:
    import lensvault

    if vault_dir.exists():
        shutil.rmtree(vault_dir)
    vault = lensvault.init(vault_dir)
    try:
        t = time.perf_counter()
        # Hardlinks: the budget is "pycocotools' load + hashing", so storing must not copy
        # 20,000 files (copying is measured against `cp -r` by core_vs_dvc.py).
        vault.snapshot("bench", root, format="coco", version=version, split="70/20/10", seed=42, link="hardlink")
        return time.perf_counter() - t
    finally:
        vault.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=20_000)
    ap.add_argument("--boxes", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--jpeg", action="store_true", help="photo-like 640x480 JPEGs instead of tiny PNGs")
    ap.add_argument("--no-diff", action="store_true", help="skip the annotation-diff part")
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="lv-vision-bench-"))
    data = work / "data"
    if not (data / "annotations" / "instances.json").exists():
        generate(data, args.images, args.boxes, jpeg=args.jpeg)
    ann = data / "annotations" / "instances.json"

    time_pycocotools(ann)  # warm-up: page cache, imports
    time_lensvault(data, work / "vault", "0.0.1")
    coco, hashing, imports, lv = [], [], [], []
    for _i in range(args.repeats):
        coco.append(time_pycocotools(ann))
        hashing.append(time_hashing(data))
        imports.append(time_import(data))
        # A fresh vault each time: a cold stat cache, so LensVault hashes every image too.
        lv.append(time_lensvault(data, work / "vault", "1.0.0"))
    c, hsh, v = statistics.median(coco), statistics.median(hashing), statistics.median(lv)
    imp = statistics.median(imports)
    budget = 2 * c + hsh
    result = {
        "images": args.images, "boxes": args.boxes, "jpeg": args.jpeg, "pycocotools_load_s": round(c, 3),
        "hashing_s": round(hsh, 3), "import_s": round(imp, 3), "lensvault_import_snapshot_s": round(v, 3),
        "budget_s": round(budget, 3), "ratio_to_budget": round(v / budget, 3),
        "import_result": "PASS" if v <= budget else "FAIL", "repeats": args.repeats,
    }
    if args.no_diff:
        print(json.dumps(result))
        return

    sys.argv = [sys.argv[0], "--images", str(args.images), "--boxes", str(args.boxes)]
    from bench_annotation_diff import make_tables

    from lensvault.datasets.annotation_diff import diff_vision

    a, b = make_tables(args.images, args.boxes, 0.05)
    diffs = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        diff_vision(a, b)
        diffs.append(time.perf_counter() - t)
    d = statistics.median(diffs)
    print(json.dumps({**result, "diff_s": round(d, 3), "diff_result": "PASS" if d < 3 else "FAIL"}))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
