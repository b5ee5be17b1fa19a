#!/usr/bin/env python3
"""``dataset diff`` of two versions of N files: time and peak RSS, without writing N files.

    .venv/bin/python benchmarks/bench_diff_scale.py --files 1000000 2000000 --repeats 5
    .venv/bin/python benchmarks/bench_diff_scale.py --files 1000000 --lv /path/to/other/lensvault --make-with /path/to/other/src

``bench_scale.py`` measures the diff after snapshotting real folders, which at 2M files takes
most of an hour here. A diff reads only the two versions' files tables, so this commits the
versions from generated rows instead: the paths of ``bench_scale.py`` (1,000 folders), contents
from a pool of 61 stored objects, version 1.0.2 with one file modified, one removed and one
added. Each ``dataset diff --json`` runs as its own process; peak RSS is ``ru_maxrss`` from
``wait4``, read in a small launcher (a child forked from a big process would start its peak
at that process's size). With several ``--lv``, their runs alternate on the same vaults (the
tables written by ``--make-with``'s code, default this checkout's). The load average is
recorded beside every sample.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

MAKE = r"""
import sys
import lensvault
from lensvault.datasets import files_table
from lensvault.datasets.snapshot import commit_version

root, n = sys.argv[1], int(sys.argv[2])
per = -(-n // 1000)
vault = lensvault.init(root)
oids = [vault.store.put_bytes(b"content %d\n" % k) for k in range(61)]
paths = [f"d{i // per:04d}/f{i % per:07d}.bin" for i in range(n)]
sha = [oids[i % 61] for i in range(n)]
sizes = [len(b"content %d\n" % (i % 61)) for i in range(n)]

def commit(version):
    k = len(paths)
    rows = files_table.FileRows(paths, sizes, sha, ["application/octet-stream"] * k, [None] * k, [None] * k)
    commit_version(vault, name="ds", version=version, files=rows)

commit("1.0.0")
sha[n // 2], sizes[n // 2] = oids[(n // 2 + 1) % 61], sizes[n // 2 + 1]
del paths[n // 3], sha[n // 3], sizes[n // 3]
paths.append("zz/new.bin"); sha.append(oids[5]); sizes.append(sizes[5])
commit("1.0.2")
vault.close()
"""

LAUNCH = ("import os, subprocess, sys\n"
          "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
          "_, status, usage = os.wait4(p.pid, 0)\n"
          "print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)\n")


def make(vault: Path, n: int, src: str | None) -> None:
    if (vault / ".made").exists():
        return
    env = dict(os.environ, PYTHONPATH=src) if src else None
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", MAKE, str(vault), str(n)], check=True, env=env)
    (vault / ".made").write_text("")
    print(f"made two versions of {n:,} files in {time.perf_counter() - t0:.0f} s", file=sys.stderr)


def diff(lv: str, vault: Path) -> dict:
    l0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", LAUNCH, lv, "--vault", str(vault), "dataset", "diff", "ds@1.0.0",
                        "ds@1.0.2", "--json"], capture_output=True, text=True)
    dt = time.perf_counter() - t0
    code, kb = r.stdout.split()
    if code != "0":
        raise SystemExit(f"{lv} failed: {r.stderr[-2000:]}")
    return {"s": dt, "rss_mb": int(kb) / 1024, "load": l0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--work", type=Path, default=Path("/tmp/lv-bench-diff"))
    ap.add_argument("--lv", action="append", help="a lensvault executable (repeatable; default this checkout's)")
    ap.add_argument("--make-with", help="the src folder whose code writes the versions (default this checkout's)")
    args = ap.parse_args()
    lvs = args.lv or [str(Path(sys.executable).parent / "lensvault")]
    print("| files | lensvault | time (median) | peak RSS (median, max) | load |\n|---|---|---|---|---|")
    for n in args.files:
        vault = args.work / f"vault-{n}"
        make(vault, n, args.make_with)
        samples: dict[str, list[dict]] = {lv: [] for lv in lvs}
        for rep in range(args.repeats):
            for lv in (lvs if rep % 2 == 0 else lvs[::-1]):
                samples[lv].append(diff(lv, vault))
        for lv, s in samples.items():
            print(f"| {n:,} | {lv} | {statistics.median(x['s'] for x in s):.2f} s "
                  f"| {statistics.median(x['rss_mb'] for x in s):.0f} MB, {max(x['rss_mb'] for x in s):.0f} MB "
                  f"| {statistics.median(x['load'] for x in s):.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
