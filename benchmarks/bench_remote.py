"""Push and pull through a local S3-compatible server: LensVault vs ``dvc push`` / ``dvc pull``.

    .venv/bin/python benchmarks/bench_remote.py [--files 3000] [--source DIR] [--big-mb 0] [--repeats 1]
        [--dvc PATH/TO/dvc] [--out results.json]

Makes N small JPEGs — with ``--source DIR``, real ones: the JPEGs under DIR, each copied with a
distinct trailing comment after its end-of-image marker (decoders ignore it) until there are N
distinct files; otherwise noise, 10-30 KB — plus, with ``--big-mb N``, one file of N MB of random
bytes (incompressible, like a video or a weights file) — snapshots them in a fresh vault, and for each tool,
against a fresh moto server each time (moto keeps objects in memory): first push, push with
nothing new, push after one changed file, pull/clone into an empty place. Times are wall clock
of the whole command; requests are counted from the server's request log (one line per HTTP
request); peak memory is the command's maximum resident set (its own and its waited-for
children's, from wait4). DVC runs only if a ``dvc`` with the s3 extra is found (``--dvc``, or on PATH);
install it in a separate venv (``python -m venv /tmp/dvc && /tmp/dvc/bin/pip install dvc dvc-s3``):
in one environment with moto, pip backtracks on boto3 for minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable
CREDS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1",
         "AWS_DEFAULT_REGION": "us-east-1"}
_REQUEST = re.compile(r'"(GET|PUT|HEAD|POST|DELETE) [^"]*HTTP/1\.1" \d{3}')
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # the server colours 4xx/5xx lines (a 412 is a request too)


def copy_images(root: Path, n: int, source: Path) -> int:
    """N distinct real JPEGs: the source's, round-robin, each with its own trailing bytes."""
    found = sorted(p for p in source.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
    if not found:
        raise SystemExit(f"no JPEGs under {source}")
    root.mkdir(parents=True)
    total = 0
    for i in range(n):
        src = found[i % len(found)]
        p = root / f"img_{i:06d}.jpg"
        p.write_bytes(src.read_bytes() + f"copy {i}".encode())
        total += p.stat().st_size
    return total


def add_big_file(root: Path, mb: int) -> int:
    """One big incompressible file beside the images (written in 8 MB blocks: bounded memory)."""
    p = root / "big" / f"clip_{mb}mb.bin"
    p.parent.mkdir()
    with open(p, "wb") as f:
        f.writelines(os.urandom(8 << 20) for _ in range(mb // 8))
        f.write(os.urandom((mb % 8) << 20))
    return p.stat().st_size


def make_images(root: Path, n: int) -> int:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(7)
    root.mkdir(parents=True)
    total = 0
    for i in range(n):
        side = int(rng.integers(96, 160))
        arr = rng.integers(0, 255, size=(side, side, 3), dtype=np.uint8)
        p = root / f"img_{i:06d}.jpg"
        Image.fromarray(arr).save(p, quality=70)
        total += p.stat().st_size
    return total


class Server:
    """A fresh moto server on a free loopback port; its request log on a file."""

    def __init__(self, workdir: Path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log = workdir / f"moto-{self.port}.log"
        with open(self.log, "w") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen([PY, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                         stdout=subprocess.DEVNULL, stderr=log)
        self.url = f"http://127.0.0.1:{self.port}"
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        import boto3

        boto3.client("s3", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id="bench", aws_secret_access_key="bench").create_bucket(Bucket="bench")

    def requests(self) -> int:
        text = _ANSI.sub("", self.log.read_text(errors="replace"))
        return sum(1 for line in text.splitlines() if _REQUEST.search(line))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def _user_env() -> dict[str, str]:
    """The environment a user's shell has: bytecode caching on (a developer shell may turn it off,
    and then every command of either tool compiles its modules from source each time)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(cmd: list[str], cwd: Path, env: dict) -> tuple[float, float]:
    """(seconds, peak resident MB) of the command."""
    t = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            out.seek(0)
            err.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed:\n{out.read()[-2000:]!r}\n{err.read()[-2000:]!r}")
    return seconds, usage.ru_maxrss / 1024  # kilobytes on Linux


def measure(label: str, server: Server, cmd: list[str], cwd: Path, env: dict) -> tuple[float, int, float]:
    before = server.requests()
    seconds, peak = timed(cmd, cwd, env)
    return seconds, server.requests() - before, peak


def lensvault_run(work: Path, images: Path) -> dict[str, tuple[float, int, float]]:
    lv = [PY, "-m", "lensvault.cli.main"]
    env = {k: v for k, v in _user_env().items() if not k.startswith("LENSVAULT_")} | CREDS
    server = Server(work)
    try:
        vault = work / "lv-a"
        subprocess.run([*lv, "init", str(vault)], check=True, capture_output=True, env=env)
        subprocess.run([*lv, "dataset", "snapshot", "frames", str(images), "--version", "1.0.0"], cwd=vault,
                       check=True, capture_output=True, env=env)
        subprocess.run([*lv, "remote", "add", "origin", "s3://bench/lv", "--endpoint-url", server.url], cwd=vault,
                       check=True, capture_output=True, env=env)
        out = {"first push": measure("first push", server, [*lv, "push", "--all", "--json"], vault, env),
               "push, nothing new": measure("again", server, [*lv, "push", "--all", "--json"], vault, env)}
        (images / "img_000000.jpg").write_bytes((images / "img_000000.jpg").read_bytes() + b"\0")
        subprocess.run([*lv, "dataset", "snapshot", "frames", str(images), "--version", "1.0.1"], cwd=vault,
                       check=True, capture_output=True, env=env)
        out["push after one changed file"] = measure("one", server, [*lv, "push", "--all", "--json"], vault, env)
        out["pull into an empty vault"] = measure(
            "clone", server, [*lv, "clone", "s3://bench/lv", str(work / "lv-b"), "--endpoint-url", server.url],
            work, env)
        return out
    finally:
        server.stop()


def dvc_run(dvc: str, work: Path, images: Path) -> dict[str, tuple[float, int, float]]:
    env = _user_env() | CREDS
    server = Server(work)
    try:
        repo = work / "dvc-a"
        repo.mkdir()
        shutil.copytree(images, repo / "data")
        subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
        for args in (["init", "-q"], ["add", "-q", "data"], ["remote", "add", "-d", "s3", "s3://bench/dvc"],
                     ["remote", "modify", "s3", "endpointurl", server.url]):
            subprocess.run([dvc, *args], cwd=repo, check=True, capture_output=True, env=env)
        out = {"first push": measure("first", server, [dvc, "push", "-q"], repo, env),
               "push, nothing new": measure("again", server, [dvc, "push", "-q"], repo, env)}
        f = repo / "data" / "img_000000.jpg"
        f.write_bytes(f.read_bytes() + b"\0")
        subprocess.run([dvc, "add", "-q", "data"], cwd=repo, check=True, capture_output=True, env=env)
        out["push after one changed file"] = measure("one", server, [dvc, "push", "-q"], repo, env)
        shutil.rmtree(repo / ".dvc" / "cache")
        shutil.rmtree(repo / "data")
        out["pull into an empty vault"] = measure("pull", server, [dvc, "pull", "-q"], repo, env)
        return out
    finally:
        server.stop()


def _save(out: Path | None, results: dict) -> None:
    results.setdefault("load_average_1min", []).append(round(os.getloadavg()[0], 1))
    if out is not None:
        out.write_text(json.dumps(results, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=3000)
    ap.add_argument("--source", type=Path, help="a folder of real JPEGs to copy from (default: generated noise)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--dvc", default=shutil.which("dvc"))
    ap.add_argument("--big-mb", type=int, default=0, help="add one file of this many MB of random bytes")
    ap.add_argument("--out", type=Path, help="write every run's numbers here as soon as it ends")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lv-bench-remote-") as tmp:
        work = Path(tmp)
        size = copy_images(work / "images", args.files, args.source) if args.source else \
            make_images(work / "images", args.files)
        if args.big_mb:
            size += add_big_file(work / "images", args.big_mb)
        print(f"{args.files} JPEGs, {size / 1e6:.1f} MB; moto server on loopback, fresh per run", file=sys.stderr)
        results: dict[str, list[dict[str, tuple[float, int, float]]]] = {"lensvault": [], "dvc": []}
        for i in range(args.repeats):
            images = work / f"images-{i}"
            shutil.copytree(work / "images", images)
            (work / f"lv-{i}").mkdir()
            results["lensvault"].append(lensvault_run(work / f"lv-{i}", images))
            shutil.rmtree(work / f"lv-{i}")
            shutil.rmtree(images)
            _save(args.out, results)
            if args.dvc:
                images = work / f"images-dvc-{i}"
                shutil.copytree(work / "images", images)
                (work / f"dvc-{i}").mkdir()
                results["dvc"].append(dvc_run(args.dvc, work / f"dvc-{i}", images))
                shutil.rmtree(work / f"dvc-{i}")
                shutil.rmtree(images)
                _save(args.out, results)
    table = {}
    loads = results.pop("load_average_1min", [])
    for op in results["lensvault"][0]:
        row = {}
        for tool, runs in results.items():
            if runs:
                row[tool] = {"seconds": round(statistics.median(r[op][0] for r in runs), 2),
                             "requests": int(statistics.median(r[op][1] for r in runs)),
                             "peak_mb": round(max(r[op][2] for r in runs)),
                             "all_seconds": [round(r[op][0], 2) for r in runs]}
        if "dvc" in row:
            row["ratio"] = round(row["lensvault"]["seconds"] / max(row["dvc"]["seconds"], 1e-9), 2)
        table[op] = row
    print(json.dumps({"files": args.files, "bytes": size, "repeats": args.repeats, "results": table,
                      "load_average_1min_after_each_run": loads}, indent=2))
    print(f"{'operation':32} {'LensVault':>26} {'DVC':>26} {'ratio':>6}", file=sys.stderr)
    for op, row in table.items():
        lv_, dv = row["lensvault"], row.get("dvc")
        dvc_text = f"{dv['seconds']:7.2f} s {dv['requests']:6d} r {dv['peak_mb']:4d} MB" if dv else "         -"
        print(f"{op:32} {lv_['seconds']:7.2f} s {lv_['requests']:6d} r {lv_['peak_mb']:4d} MB {dvc_text:>26} "
              f"{row.get('ratio', '-'):>6}", file=sys.stderr)


if __name__ == "__main__":
    main()
