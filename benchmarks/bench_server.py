#!/usr/bin/env python3
"""``lensvault serve`` under load: the first screen of a big version, and concurrent mixed reads.

    .venv/bin/python benchmarks/bench_server.py                      # 100,000 images, 50 clients, 30 s
    .venv/bin/python benchmarks/bench_server.py --images 20000 --seconds 10   # quick

Builds (once per size, in WORKDIR) a vault with one COCO version of N small generated images,
three boxes each; starts ``lensvault serve --public-read`` on a free loopback port as a real
process; then measures

- the dataset version page (HTML, first screen: counts, charts, 48 images with their boxes):
  the first request after start (cold: tables read from the store) and the median of 20 more
  (another filter each time, so the page itself is computed, not a cached answer);
- C concurrent clients (asyncio + httpx) for S seconds on mixed reads: the version's JSON, a
  random page of images (JSON), a cached thumbnail, the events. Throughput and p50/p99 latency
  per kind, and errors (any status but 200).

The clients share the machine with the server (2 cores here): the numbers are a floor.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path


def build(workdir: Path, n: int) -> Path:
    from PIL import Image

    import lensvault

    root = workdir / f"vault-{n}"
    if (root / ".lensvault" / "config.toml").exists():
        return root
    src = workdir / f"data-{n}"
    (src / "images").mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for i in range(n):
        name = f"images/{i // 1000:03d}/im{i:06d}.png"
        path = src / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            Image.new("RGB", (32, 24), (i % 251, (i // 251) % 251, (i // 63001) % 251)).save(path)
        images.append({"id": i + 1, "file_name": name, "width": 32, "height": 24})
        anns.extend({"id": 3 * i + k + 1, "image_id": i + 1, "category_id": 1 + (i + k) % 3,
                     "bbox": [2 + 8 * k, 2, 6, 6], "area": 36, "iscrowd": 0} for k in range(3))
    (src / "instances.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": [
        {"id": 1, "name": "car"}, {"id": 2, "name": "person"}, {"id": 3, "name": "sign"}]}))
    vault = lensvault.init(root)
    vault.snapshot("bench", src, version="1.0.0", format="coco", annotations=src / "instances.json",
                   split="80/10/10", seed=1)
    vault.close()
    return root


def serve(root: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "lensvault.cli.main", "--vault", str(root), "serve", "--port", "0",
                             "--public-read"], stderr=subprocess.PIPE, text=True, start_new_session=True)
    line = proc.stderr.readline()
    return proc, line.split()[1]


def first_screen(url: str) -> dict:
    import httpx

    with httpx.Client(timeout=120) as c:
        t = time.perf_counter()
        r = c.get(f"{url}/datasets/bench/1.0.0")
        cold = time.perf_counter() - t
        assert r.status_code == 200 and r.text.count('class="box"') >= 48 * 3, r.status_code
        warm = []
        for k in range(20):
            t = time.perf_counter()
            r = c.get(f"{url}/datasets/bench/1.0.0", params={"split": "train", "after": 1000 * k + 1})
            warm.append(time.perf_counter() - t)
            assert r.status_code == 200
    return {"cold_ms": round(cold * 1000, 1), "warm_median_ms": round(statistics.median(warm) * 1000, 1)}


async def load(url: str, n: int, clients: int, seconds: float) -> dict:
    import httpx

    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=clients)) as c:
        page = (await c.get(f"{url}/api/v1/datasets/bench/versions/1.0.0/images", params={"limit": 20})).json()
        shas = [i["sha256"] for i in page["items"]]
        for s in shas:  # made once, then served from the cache
            await c.get(f"{url}/api/v1/objects/{s}/thumbnail", params={"size": 128})
        kinds = {
            "version_json": lambda: f"{url}/api/v1/datasets/bench/versions/1.0.0",
            "image_page_json": lambda: f"{url}/api/v1/datasets/bench/versions/1.0.0/images?limit=48&after="
                                       f"{random.randrange(n)}",
            "thumbnail_cached": lambda: f"{url}/api/v1/objects/{random.choice(shas)}/thumbnail?size=128",
            "events_json": lambda: f"{url}/api/v1/events?limit=20",
        }
        times: dict[str, list[float]] = {k: [] for k in kinds}
        errors = 0
        stop = time.monotonic() + seconds

        async def client() -> None:
            nonlocal errors
            while time.monotonic() < stop:
                kind = random.choice(list(kinds))
                t = time.perf_counter()
                r = await c.get(kinds[kind]())
                times[kind].append(time.perf_counter() - t)
                errors += r.status_code != 200

        await asyncio.gather(*(client() for _ in range(clients)))
    total = sum(len(v) for v in times.values())
    out = {"clients": clients, "seconds": seconds, "requests": total, "errors": errors,
           "throughput_rps": round(total / seconds, 1)}
    for k, v in times.items():
        v.sort()
        out[k] = {"n": len(v), "p50_ms": round(v[len(v) // 2] * 1000, 1),
                  "p99_ms": round(v[min(len(v) - 1, int(len(v) * 0.99))] * 1000, 1)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/lensvault-bench-server"))
    args = ap.parse_args()
    t = time.perf_counter()
    root = build(args.workdir, args.images)
    built = time.perf_counter() - t
    proc, url = serve(root)
    try:
        result = {"images": args.images, "build_s": round(built, 1), "first_screen": first_screen(url),
                  "load": asyncio.run(load(url, args.images, args.clients, args.seconds))}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
