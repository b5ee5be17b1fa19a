"""Time ``diff_vision`` on 20,000 images / 200,000 boxes with 5% of boxes changed.

    python benchmarks/bench_annotation_diff.py [--images 20000] [--boxes 200000] [--changed 0.05]

Prints one JSON line: table sizes, wall and CPU seconds for the diff (best of --repeat runs,
tables built beforehand) and the change counts it found. Target: under 3 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import time


def make_tables(n_images: int, n_boxes: int, changed: float, seed: int = 0):
    import numpy as np
    import pyarrow as pa

    from lensvault.annotations.model import ANNOTATION_SCHEMA, ClassMap
    from lensvault.datasets.vision_tables import VisionTables

    rng = np.random.default_rng(seed)
    classes = ClassMap.from_names([f"class{i}" for i in range(20)])
    paths = np.array([f"images/{i:06d}.jpg" for i in range(n_images)], dtype=object)
    splits = rng.choice(np.array(["train", "val", "test"], dtype=object), n_images, p=[0.7, 0.2, 0.1])
    images = pa.table({
        "path": pa.array(paths, pa.string()),
        "width": pa.array(np.full(n_images, 1280), pa.int32()),
        "height": pa.array(np.full(n_images, 720), pa.int32()),
        "orientation": pa.array(np.ones(n_images), pa.int8()),
        "split": pa.array(splits, pa.string()),
        "tags": pa.array(["{}"] * n_images, pa.string()),
        "sha256": pa.array([f"{i:064x}" for i in range(n_images)], pa.string()),
    })

    def annotations(image_ids, class_id, x, y, w, h):
        order = np.argsort(image_ids, kind="stable")
        image_ids, class_id, x, y, w, h = (v[order] for v in (image_ids, class_id, x, y, w, h))
        starts = np.r_[0, np.flatnonzero(np.diff(image_ids)) + 1]
        counts = np.diff(np.r_[starts, len(image_ids)])
        index = np.arange(len(image_ids)) - np.repeat(starts, counts)
        n = len(image_ids)
        cols = {
            "image": pa.array(paths[image_ids], pa.string()), "index": pa.array(index, pa.int32()),
            "class_id": pa.array(class_id, pa.int32()), "x": x, "y": y, "w": w, "h": h,
            "kind": pa.array(["bbox"] * n, pa.string()),
            "polygon": pa.nulls(n, ANNOTATION_SCHEMA.field("polygon").type),
            "rle": pa.nulls(n, pa.string()),
            "keypoints": pa.nulls(n, ANNOTATION_SCHEMA.field("keypoints").type),
            "iscrowd": np.zeros(n, bool), "difficult": np.zeros(n, bool),
            "truncated": np.zeros(n, bool), "occluded": np.zeros(n, bool),
            "attributes": pa.array(["{}"] * n, pa.string()),
        }
        return pa.Table.from_pydict(cols, schema=ANNOTATION_SCHEMA)

    img = rng.integers(0, n_images, n_boxes)
    cls = rng.integers(0, 20, n_boxes)
    x, y = rng.uniform(0, 1100, n_boxes).round(1), rng.uniform(0, 600, n_boxes).round(1)
    w, h = rng.uniform(20, 180, n_boxes).round(1), rng.uniform(20, 120, n_boxes).round(1)
    a = annotations(img, cls, x, y, w, h)

    # Changed boxes, in equal parts: moved a little, relabeled, removed, and new ones added.
    k = int(n_boxes * changed) // 4
    pick = rng.choice(n_boxes, 3 * k, replace=False)
    moved, relabeled, removed = pick[:k], pick[k:2 * k], pick[2 * k:]
    x2, cls2 = x.copy(), cls.copy()
    x2[moved] += np.maximum(2.0, w[moved] * 0.1)
    cls2[relabeled] = (cls2[relabeled] + 1) % 20
    keep = np.ones(n_boxes, bool)
    keep[removed] = False
    new_img = rng.integers(0, n_images, k)
    b = annotations(np.r_[img[keep], new_img], np.r_[cls2[keep], rng.integers(0, 20, k)],
                    np.r_[x2[keep], rng.uniform(0, 1100, k).round(1)], np.r_[y[keep], rng.uniform(0, 600, k).round(1)],
                    np.r_[w[keep], rng.uniform(20, 180, k).round(1)], np.r_[h[keep], rng.uniform(20, 120, k).round(1)])
    return VisionTables("bench@1.0.0", images, a, classes), VisionTables("bench@1.0.1", images, b, classes)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=20_000)
    ap.add_argument("--boxes", type=int, default=200_000)
    ap.add_argument("--changed", type=float, default=0.05)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from lensvault.datasets.annotation_diff import diff_vision

    a, b = make_tables(args.images, args.boxes, args.changed)
    times, cpu = [], []
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        d = diff_vision(a, b)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)  # wall time suffers when other jobs share the cores
    print(json.dumps({"images": args.images, "boxes_a": a.annotations.num_rows, "boxes_b": b.annotations.num_rows,
                      "seconds_best": round(min(times), 3), "seconds_all": [round(t, 3) for t in times],
                      "cpu_seconds_best": round(min(cpu), 3),
                      "counts": d.annotations.counts(), "suggested_bump": d.suggested_bump,
                      "summary": d.summary()}))


if __name__ == "__main__":
    main()
