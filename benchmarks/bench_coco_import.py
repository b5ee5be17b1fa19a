"""Memory and time of importing one big COCO annotation file (issue: 1M images and 10M boxes,
about 1.5 GB, import in <= 3x the file size).

    .venv/bin/python benchmarks/bench_coco_import.py [--images 100000] [--boxes 1000000]
        [--workdir DIR] [--repeat 1] [--against OTHER/src] [--whole] [--stream-from BYTES] [--json]

Generates a COCO folder — ``images/`` (a tiny PNG hardlinked under every name: the import
locates and judges image files, and a link costs no disk) and ``annotations/instances.json``
(written a chunk at a time, plain boxes with an ``area`` as exporters write them) — then runs the
import in a fresh interpreter (``lensvault.annotations.load``: the normalized model, the
Arrow tables a snapshot writes) and reports its wall time, the CPU time of the importing process
(steadier than wall time on a shared machine; image checks in worker processes not included),
its peak RSS (``ru_maxrss`` of the child), and the peak RSS per GB of JSON, beside the
interpreter's own baseline (imports only).

``--against OTHER/src`` (e.g. ``git archive main src | tar -x -C /tmp/main``) runs the same
import with that source tree first on the path, alternating with this checkout's runs (the
machine's load then weighs on both alike), and reports the ratios of the medians. ``--whole``
adds this checkout's whole-file parse (streaming off for the run) to the alternation: the cost of
streaming at this size, side by side.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import sys, time, resource
from pathlib import Path
import lensvault.annotations as A
import pyarrow  # noqa: F401 - imported before the baseline, as the import itself needs it
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if len(sys.argv) > 3:  # where the streamed read starts (bytes): past the file's size, a whole-file parse
    from lensvault.annotations.importers import coco_stream
    coco_stream.STREAM_FROM = int(sys.argv[3])
if sys.argv[2] == "load":
    t, cpu = time.perf_counter(), time.process_time()
    s = A.load(Path(sys.argv[1]), format="coco")
    print(base, time.perf_counter() - t, time.process_time() - cpu, s.images.num_rows, s.annotations.num_rows,
          resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, A.__file__)
else:
    print(base, 0.0, 0.0, 0, 0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, A.__file__)
"""


def generate(root: Path, n_images: int, n_boxes: int, seed: int = 0) -> Path:
    from PIL import Image

    rnd = random.Random(seed)
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 120, 150)).save(buf, format="PNG")
    for i in range(n_images):
        path = root / "images" / f"img_{i:07d}.png"
        if i % 50_000 == 0:  # a file takes at most 65,000 links (ext4)
            first = path
            first.write_bytes(buf.getvalue())
        else:
            os.link(first, path)
    path = root / "annotations" / "instances.json"
    cats = [{"id": k + 1, "name": f"class{k}", "supercategory": "thing"} for k in range(80)]
    with open(path, "w") as f:
        f.write('{"info": {"description": "generated"}, "licenses": [], "categories": ')
        f.write(json.dumps(cats))
        f.write(', "images": [')
        for i in range(n_images):
            f.write(("," if i else "") + json.dumps({"id": i + 1, "file_name": f"img_{i:07d}.png",
                                                     "width": 640, "height": 480}))
        f.write('], "annotations": [')
        chunk = []
        for j in range(n_boxes):
            w, h = round(rnd.uniform(4, 200), 2), round(rnd.uniform(4, 200), 2)
            x, y = round(rnd.uniform(0, 640 - w), 2), round(rnd.uniform(0, 480 - h), 2)
            chunk.append(json.dumps({"id": j + 1, "image_id": j % n_images + 1, "category_id": rnd.randint(1, 80),
                                     "bbox": [x, y, w, h], "area": round(w * h, 2), "iscrowd": 0,
                                     "segmentation": []}))
            if len(chunk) == 10_000:
                f.write(("," if j >= 10_000 else "") + ",".join(chunk))
                chunk = []
        if chunk:
            f.write(("," if n_boxes > len(chunk) else "") + ",".join(chunk))
        f.write("]}")
    return path


def run_child(root: Path, what: str, src: str | None = None, stream_from: int | None = None) -> tuple[dict, int]:
    """Run the import in a fresh interpreter (``src`` first on its path, if given; a file of
    ``stream_from`` bytes or more read in chunks, if given); return what it printed and its peak
    RSS in KB (the child's own high-water mark, read as it ends)."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    t = time.perf_counter()
    extra = [] if stream_from is None else [str(stream_from)]
    p = subprocess.run([sys.executable, "-c", CHILD, str(root), what, *extra], capture_output=True, text=True,
                       env=env)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"import failed ({p.returncode}): {p.stderr[-3000:]}")
    base_kb, import_s, cpu_s, n_images, n_boxes, peak_kb, where = p.stdout.split()
    if src is not None and not where.startswith(os.path.abspath(src)):
        raise SystemExit(f"the child imported LensVault from {where}, not from {src}")
    return {"wall_s": round(wall, 1), "import_s": round(float(import_s), 1), "import_cpu_s": round(float(cpu_s), 1),
            "baseline_kb": int(base_kb),
            "images": int(n_images), "boxes": int(n_boxes)}, int(peak_kb)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=100_000)
    ap.add_argument("--boxes", type=int, default=1_000_000)
    ap.add_argument("--workdir", help="generate here (a new folder) and keep it; reuse it if it exists")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--against", help="another checkout's src folder to run alternately (see the docstring)")
    ap.add_argument("--whole", action="store_true",
                    help="also run this checkout with the whole-file parse (no streaming), alternately")
    ap.add_argument("--stream-from", type=int, metavar="BYTES",
                    help="this checkout streams files of this many bytes or more (default: its own threshold)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    root = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench-coco-")) / "coco"
    path = root / "annotations" / "instances.json"
    if not path.is_file():
        t = time.perf_counter()
        generate(root, args.images, args.boxes)
        print(f"generated {path} ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.0f} s",
              file=sys.stderr)
    size = path.stat().st_size
    _, baseline_kb = run_child(root, "baseline")
    sides: dict[str, tuple[str | None, int | None]] = {"this": (None, args.stream_from)}
    if args.whole:
        sides["whole"] = (None, size + 1)
    if args.against:
        sides["against"] = (args.against, None)
    runs: dict[str, list[dict]] = {side: [] for side in sides}
    for _ in range(args.repeat):
        for side, (src, stream_from) in sides.items():  # interleaved: every side sees the same load
            out, peak_kb = run_child(root, "load", src, stream_from)
            runs[side].append({**out, "peak_rss_mb": round(peak_kb / 1024),
                               "load_average_1min": round(os.getloadavg()[0], 1)})
    result = {"json_mb": round(size / 1e6), "images": runs["this"][0]["images"], "boxes": runs["this"][0]["boxes"],
              "baseline_rss_mb": round(baseline_kb / 1024), "python": sys.version.split()[0]}
    for side, side_runs in runs.items():
        peak_mb = max(r["peak_rss_mb"] for r in side_runs)
        result[side] = {"peak_rss_mb": peak_mb, "peak_rss_per_gb_of_json_gb": round(peak_mb * 1024 * 1024 / size, 2),
                        "above_baseline_per_gb_of_json_gb":
                            round((peak_mb - baseline_kb / 1024) * 1024 * 1024 / size, 2),
                        "median_import_s": statistics.median([r["import_s"] for r in side_runs]),
                        "median_import_cpu_s": statistics.median([r["import_cpu_s"] for r in side_runs]),
                        "runs": side_runs}
    if args.against:
        result["against_src"] = args.against
    for other in ("whole", "against"):
        if other in runs:
            result[f"time_ratio_this_over_{other}"] = round(
                result["this"]["median_import_s"] / result[other]["median_import_s"], 2)
            result[f"cpu_ratio_this_over_{other}"] = round(
                result["this"]["median_import_cpu_s"] / result[other]["median_import_cpu_s"], 2)
            result[f"peak_ratio_this_over_{other}"] = round(
                result["this"]["peak_rss_mb"] / result[other]["peak_rss_mb"], 2)
    if not args.json:
        for side in runs:
            r = result[side]
            print(f"{side}: {result['json_mb']} MB of COCO JSON ({result['images']:,} images, {result['boxes']:,} "
                  f"boxes): peak RSS {r['peak_rss_mb']} MB ({r['peak_rss_per_gb_of_json_gb']} GB per GB of JSON; "
                  f"interpreter and imports {result['baseline_rss_mb']} MB); import median {r['median_import_s']} s "
                  f"(CPU of the importing process {r['median_import_cpu_s']} s), "
                  f"loads {[x['load_average_1min'] for x in r['runs']]}", file=sys.stderr)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
