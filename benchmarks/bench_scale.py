#!/usr/bin/env python3
"""Scale benchmark: time and peak memory of the core commands on millions of small files.

    .venv/bin/python benchmarks/bench_scale.py --files 200000 --repeats 1
    .venv/bin/python benchmarks/bench_scale.py --files 1000000 --repeats 3 --out /tmp/scale-1m.json
    .venv-bench/bin/python benchmarks/bench_scale.py --files 1000000 --dvc     # DVC side by side

Data: N files of 1-4 KB (distinct content: a per-file header and a slice of one random
buffer) in 1,000 folders, written once into WORK/data-N and reused while the stamp
matches. Real image content is not needed: this is about file counts.

Each command runs as its own process, the way a user runs it: a new snapshot
(hardlink), the same again (nothing changed), again after one file is replaced,
``status``, ``dataset diff`` of the first and last versions, and a hardlink
``checkout``. For each: wall time and peak RSS. Peak RSS is ``ru_maxrss`` from
``wait4`` of the command: the largest resident set of the process or of any
process it started and waited for (what ``/usr/bin/time -v`` reports), not a sum
over processes running at once. With ``--dvc`` the matching DVC commands run
interleaved with LensVault's (``dvc add``, again, again after the change,
``dvc status``, ``dvc checkout``); a DVC step over ``--dvc-limit`` seconds (600)
is stopped and reported as skipped.

The machine may be shared: the load average is recorded before and after every
command, and the result JSON keeps every sample (``--out``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FOLDERS = 1000


# -- data ---------------------------------------------------------------------------------------
def rel_path(i: int, n_files: int) -> str:
    per = -(-n_files // FOLDERS)
    return f"d{i // per:04d}/f{i % per:07d}.bin"


def _write_share(data: str, n_files: int, seed: int, k: int, n: int) -> int:
    """Write every n-th folder starting at k (a forked writer's share); the bytes written."""
    import random

    rng = random.Random(seed * 1000 + k)
    pool = rng.randbytes(1 << 20)
    per = -(-n_files // FOLDERS)
    total = 0
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    for d in range(k, FOLDERS, n):
        first = d * per
        if first >= n_files:
            break
        folder = f"{data}/d{d:04d}"
        os.mkdir(folder)
        for i in range(first, min(first + per, n_files)):
            size = 1024 + (i * 2654435761) % 3073
            off = (i * 40503) % ((1 << 20) - 4096)
            fd = os.open(f"{folder}/f{i % per:07d}.bin", flags, 0o644)
            try:
                os.write(fd, b"%d:%d\n" % (seed, i) + pool[off:off + size])
            finally:
                os.close(fd)
            total += size
    return total


def generate(work: Path, n_files: int, seed: int = 1) -> Path:
    data = work / f"data-{n_files}"
    stamp = work / f".data-{n_files}-{seed}.ok"
    if data.is_dir() and stamp.exists():
        return data
    if data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True)
    t0 = time.perf_counter()
    writers = max(1, min(4, os.cpu_count() or 1))
    pids = []
    for k in range(writers):
        pid = os.fork()
        if pid == 0:  # a writer: its share of the folders, then out without the parent's cleanups
            code = 1
            try:
                _write_share(str(data), n_files, seed, k, writers)
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        if status != 0:
            raise SystemExit("generating the data failed")
    stamp.write_text(json.dumps({"files": n_files, "seed": seed, "s": round(time.perf_counter() - t0, 1)}))
    print(f"generated {n_files:,} files in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return data


def warm(data: Path) -> None:
    """Read every file once, untimed: both tools' first read then finds the page cache as the
    later steps do. Without it the first snapshot measured whether the files written minutes
    before were still cached (21 s warm, 80 s cold at 1M), not the tool."""
    t0 = time.perf_counter()
    subprocess.run(f"find {shlex.quote(str(data))} -type f -print0 | xargs -0 -n 2000 cat > /dev/null", shell=True,
                   check=True)
    print(f"read the data once in {time.perf_counter() - t0:.0f} s", file=sys.stderr)


def replace_one(folder: Path, rel: str, tag: int) -> None:
    """A new file under the same name (new inode), as an editor or a tool writes it."""
    p = folder / rel
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_bytes(b"changed %d\n" % tag + os.urandom(2048))
    os.replace(tmp, p)


# -- running ----------------------------------------------------------------------------------------
def load() -> float:
    return os.getloadavg()[0]


def run(cmd: list[str], cwd: Path, env: dict[str, str], log, limit: float | None = None) -> dict:
    """Run ``cmd``; its wall time, peak RSS (MB, the largest of its process tree) and load average."""
    l0 = load()
    t0 = time.perf_counter()
    with open(os.devnull, "wb") as null:
        p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=null, stderr=subprocess.PIPE, start_new_session=True)
        deadline = None if limit is None else t0 + limit
        skipped = False
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if deadline is not None and time.perf_counter() > deadline:
                os.killpg(p.pid, signal.SIGKILL)
                pid, status, ru = os.wait4(p.pid, 0)
                skipped = True
                break
            time.sleep(0.01)
        err = p.stderr.read().decode(errors="replace") if p.stderr else ""
        p.returncode = os.waitstatus_to_exitcode(status)
    dt = time.perf_counter() - t0
    out = {"s": round(dt, 3), "rss_mb": round(ru.ru_maxrss / 1024, 1), "load": [round(l0, 2), round(load(), 2)],
           "rc": p.returncode}
    log.write(f"{dt:9.3f}s rss={out['rss_mb']:8.1f}MB load={out['load']} rc={p.returncode} $ {' '.join(cmd)}\n")
    log.flush()
    if skipped:
        out["skipped"] = f"stopped after {limit:.0f} s"
    elif p.returncode != 0:
        raise SystemExit(f"command failed (rc={p.returncode}): {' '.join(cmd)}\n{err[-3000:]}")
    return out


def rmtree(p: Path) -> None:
    if p.exists() or p.is_symlink():
        subprocess.run(["rm", "-rf", str(p)], check=True)


STEPS = ("snapshot", "again", "one_changed", "status", "diff", "checkout")


def one_repeat(args, data: Path, rep: int, env: dict[str, str], log) -> dict[str, dict]:
    """One pass of every step for LensVault (and DVC): {step: {tool: sample}}."""
    base = args.work / f"run-{rep}"
    rmtree(base)
    base.mkdir(parents=True)
    samples: dict[str, dict] = {s: {} for s in STEPS}
    lv_ws = base / "lv-data"
    subprocess.run(["cp", "-al", str(data), str(lv_ws)], check=True) if args.link_copy else \
        subprocess.run(["cp", "-r", str(data), str(lv_ws)], check=True)
    vault = base / "vault"
    subprocess.run([args.lv, "init", str(vault)], check=True, stdout=subprocess.DEVNULL, env=env)
    lv = [args.lv, "--vault", str(vault)]
    dvc_repo = base / "dvc"
    if args.dvc:
        dvc_repo.mkdir()
        subprocess.run(["cp", "-r", str(data), str(dvc_repo / "data")], check=True)
        for c in (["git", "init", "-q"], [args.dvc_bin, "init", "-q"], [args.dvc_bin, "config", "core.analytics", "false"],
                  [args.dvc_bin, "config", "cache.type", "hardlink"]):
            subprocess.run(c, cwd=dvc_repo, check=True, env=env, stdout=subprocess.DEVNULL)
    dvc_dead: set[str] = set()

    def lv_step(step: str, cmd: list[str]) -> None:
        samples[step]["lensvault"] = run(cmd, base, env, log)

    def dvc_step(step: str, cmd: list[str], before=None) -> None:
        if not args.dvc:
            return
        if "add" in dvc_dead and step in ("again", "one_changed", "status", "checkout"):
            samples[step]["dvc"] = {"skipped": "its first add was stopped"}
            return
        if before:
            before()
        samples[step]["dvc"] = r = run(cmd, dvc_repo, env, log, limit=args.dvc_limit)
        if "skipped" in r and step == "snapshot":
            dvc_dead.add("add")

    def pair(step: str, lv_cmd: list[str], dvc_cmd: list[str] | None, dvc_before=None) -> None:
        # Interleaved: DVC first in odd repeats, LensVault first in even ones.
        order = [0, 1] if rep % 2 == 0 else [1, 0]
        for k in order:
            if k == 0:
                lv_step(step, lv_cmd)
            elif dvc_cmd is not None:
                dvc_step(step, dvc_cmd, dvc_before)

    snap = [*lv, "dataset", "snapshot", "ds", str(lv_ws), "--link", "hardlink", "--json"]
    dvc_add = [args.dvc_bin, "add", "data"]
    pair("snapshot", [*snap, "--version", "1.0.0"], dvc_add)
    pair("again", [*snap, "--version", "1.0.1", "--force"], dvc_add)
    rel = rel_path(args.files // 2, args.files)
    replace_one(lv_ws, rel, rep)
    if args.dvc:
        replace_one(dvc_repo / "data", rel, rep)
    pair("one_changed", [*snap, "--version", "1.0.2", "--force"], dvc_add)
    pair("status", [*lv, "status", "ds@1.0.2", str(lv_ws), "--json"], [args.dvc_bin, "status"])
    lv_step("diff", [*lv, "dataset", "diff", "ds@1.0.0", "ds@1.0.2", "--json"])
    pair("checkout", [*lv, "dataset", "checkout", "ds@1.0.2", str(base / "out"), "--link", "hardlink", "--json"],
         [args.dvc_bin, "checkout"], dvc_before=lambda: rmtree(dvc_repo / "data"))
    if not args.no_check:
        rc = subprocess.run([*lv, "status", "ds@1.0.2", str(base / "out")], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL).returncode
        if rc != 0:
            raise SystemExit(f"the checkout does not match ds@1.0.2 (status rc={rc})")
    if not args.keep:
        rmtree(base)
    return samples


def summarize(reps: list[dict[str, dict]]) -> list[dict]:
    rows = []
    for step in STEPS:
        row: dict = {"step": step}
        for tool in ("lensvault", "dvc"):
            got = [r[step][tool] for r in reps if tool in r[step]]
            ok = [g for g in got if "s" in g and "skipped" not in g]
            if got and not ok:
                row[tool] = {"skipped": got[0].get("skipped", "skipped")}
            elif ok:
                row[tool] = {"s": round(statistics.median(g["s"] for g in ok), 2),
                             "rss_mb": round(statistics.median(g["rss_mb"] for g in ok)),
                             "rss_mb_max": max(g["rss_mb"] for g in ok), "n": len(ok),
                             "load": round(statistics.median(g["load"][0] for g in ok), 2)}
        rows.append(row)
    return rows


def table(rows: list[dict], n_files: int) -> str:
    label = {"snapshot": "new snapshot (hardlink)", "again": "again, nothing changed",
             "one_changed": "again, one file changed", "status": "status", "diff": "diff of two versions",
             "checkout": "checkout (hardlink)"}
    out = [f"| {n_files:,} files | LensVault time | LensVault peak RSS | DVC time | DVC peak RSS | load |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        lv, dvc = r.get("lensvault", {}), r.get("dvc", {})
        d_s = dvc.get("skipped") or (f"{dvc['s']:.1f} s" if "s" in dvc else "—")
        d_m = f"{dvc['rss_mb']} MB" if "rss_mb" in dvc else "—"
        out.append(f"| {label[r['step']]} | {lv.get('s', float('nan')):.2f} s | {lv.get('rss_mb', '?')} MB | {d_s} | {d_m} "
                   f"| {lv.get('load', '?')} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--work", type=Path, default=Path("/tmp/lv-bench-scale"))
    ap.add_argument("--out", type=Path, help="write every sample and the medians here (JSON)")
    ap.add_argument("--dvc", action="store_true", help="run DVC side by side (needs .venv-bench, see setup.sh)")
    ap.add_argument("--dvc-limit", type=float, default=600.0, help="stop a DVC step after this many seconds")
    ap.add_argument("--lv", default=str(Path(sys.executable).parent / "lensvault"))
    ap.add_argument("--dvc-bin", default=str(Path(sys.executable).parent / "dvc"))
    ap.add_argument("--link-copy", action="store_true",
                    help="make the workspace with `cp -al` (fast, shares inodes with the generated data) instead of `cp -r`")
    ap.add_argument("--keep", action="store_true", help="keep each repeat's vault and folders")
    ap.add_argument("--no-check", action="store_true",
                    help="skip the untimed `status` of the checkout (code before issue 16 took minutes there)")
    ap.add_argument("--clean", action="store_true", help="remove the generated data at the end")
    ap.add_argument("--cold", action="store_true",
                    help="do not read the data once before each repeat (the first snapshot then measures the disk)")
    args = ap.parse_args(argv)
    args.work = args.work.absolute()
    args.work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, DVC_NO_ANALYTICS="1", PYTHONWARNINGS="ignore", GIT_AUTHOR_NAME="bench",
               GIT_AUTHOR_EMAIL="b@b", GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="b@b")
    data = generate(args.work, args.files)
    reps = []
    with open(args.work / "commands.log", "a") as log:
        log.write(f"# {_dt.datetime.now(_dt.UTC).isoformat()} files={args.files}\n")
        for rep in range(args.repeats):
            if not args.cold:
                warm(data)
            reps.append(one_repeat(args, data, rep, env, log))
            print(f"repeat {rep + 1}/{args.repeats} done", file=sys.stderr)
    rows = summarize(reps)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    result = {"files": args.files, "repeats": args.repeats, "commit": commit,
              "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "cpus": os.cpu_count(),
              "rows": rows, "samples": reps}
    print(table(rows, args.files))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    if args.clean:
        rmtree(data)
        (args.work / f".data-{args.files}-1.ok").unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
