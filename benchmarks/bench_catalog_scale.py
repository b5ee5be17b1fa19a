"""The catalog at scale: 10,000 dataset versions, 100,000 runs with 10M metric points, 1,000 models.

    .venv/bin/python benchmarks/bench_catalog_scale.py [--datasets 10000] [--runs 100000]
        [--points-per-run 100] [--models 1000] [--repeat 5] [--keep DIR] [--json]

Rows go straight into a fresh vault's SQLite catalog with SQLAlchemy Core (bench_lineage.fill
for datasets, configs, runs, models, evaluations and aliases; then each run's metric points —
``loss``, ``lr`` and ``AP50`` in turns, one step each — and its latest values). These commands
read only the catalog, so no object needs to exist; ``why`` compares a pair of model versions
added for it (``why0@1.0.0`` and ``why0@1.1.0``: same data and commit, configs that differ, both
evaluated on the hot dataset version, 100 logged points each), so it reads the catalog only (an
annotation diff of two real versions is measured by bench_annotation_diff.py). Each command is
timed two ways, median of ``--repeat`` after one warm-up:

* in-process, the library call the CLI makes (what a server request pays);
* as the command a user types (``lensvault …`` in a subprocess: interpreter and imports included),
  with the heavy packages it imported (none since the read queries run on sqlite3: SQLAlchemy's
  import alone was 160–230 ms of each).

Issue target: ``dataset log``, ``runs list``, ``lineage … --down``, ``why`` under 200 ms.
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_lineage import fill  # noqa: E402

TARGET_MS = 200.0


def fill_points(vault, n_runs_points: int) -> int:
    """``n_runs_points`` points per run, and the runs' latest values."""
    import sqlalchemy as sa

    from lensvault.catalog import runs_schema as s

    now = "2026-01-01T00:00:00.000000Z"
    keys = ("loss", "lr", "AP50")
    total = 0
    with vault.catalog.begin() as conn:
        run_ids = [r[0] for r in conn.execute(sa.select(s.runs.c.run_id))]
        batch: list[dict] = []
        latest: list[dict] = []
        for rid in run_ids:
            batch.extend({"run_id": rid, "key": keys[step % 3], "value": 1.0 / (step + 1), "step": step,
                          "class_name": None, "slice": None, "at": now} for step in range(n_runs_points))
            for k, key in enumerate(keys):
                last = max(st for st in range(n_runs_points) if st % 3 == k) if n_runs_points > k else None
                if last is not None:
                    latest.append({"run_id": rid, "key": key, "value": 1.0 / (last + 1), "step": last, "at": now})
            if len(batch) >= 50_000:
                conn.execute(sa.insert(s.run_metrics), batch)
                total += len(batch)
                batch = []
        if batch:
            conn.execute(sa.insert(s.run_metrics), batch)
            total += len(batch)
        for i in range(0, len(latest), 10_000):
            conn.execute(sa.insert(s.run_latest_metrics), latest[i:i + 10_000])
    return total


def add_why_pair(vault, hot: str) -> tuple[str, str]:
    """Two model versions ``why`` can compare from the catalog alone (idempotent: a kept vault gets them once)."""
    import sqlalchemy as sa

    from lensvault.catalog import registry_schema as r
    from lensvault.catalog import runs_schema as s

    a, b = "why0@1.0.0", "why0@1.1.0"
    now = "2026-02-01T00:00:00.000000Z"
    with vault.catalog.begin() as conn:
        if conn.execute(sa.select(r.model_versions.c.name).where(r.model_versions.c.name == "why0")).first():
            return a, b
        for k, cfg in ((0, "C-001"), (1, "C-002")):
            rid = f"2026-02-01T00-00-0{k}Z-why{k}"
            conn.execute(sa.insert(s.runs), [{
                "run_id": rid, "status": "succeeded", "kind": "run", "code_commit": None, "clean": True,
                "repo_root": None, "dataset": hot, "dataset_snapshot": "0" * 64, "config_id": cfg,
                "seeds": '{"train": 1}', "command": '["python", "train.py"]', "cwd": "/repo",
                "started_at": now, "ended_at": now, "created_by": "bench", "exit_code": 0}])
            conn.execute(sa.insert(s.run_metrics), [
                {"run_id": rid, "key": "AP50", "value": 0.5 + k / 10 + st / 1000, "step": st, "class_name": None,
                 "slice": None, "at": now} for st in range(100)])
            conn.execute(sa.insert(r.model_versions), [{
                "name": "why0", "version": f"1.{k}.0", "major": 1, "minor": k, "patch": 0, "run_id": rid,
                "bundle_oid": f"{k:064x}", "dataset": hot, "config_id": cfg, "code_commit": None,
                "metrics": '{"AP50": 0.5}', "release_notes": "", "bump": "minor", "created_at": now,
                "created_by": "bench"}])
            conn.execute(sa.insert(s.evaluations), [{
                "eval_id": f"eval-why{k}", "run_id": rid, "model_name": "why0", "model_version": f"1.{k}.0",
                "dataset": hot, "dataset_snapshot": "0" * 64, "split": "test",
                "metrics": json.dumps({"overall": {"AP": 0.4 + k / 10, "AP50": 0.6 + k / 10}}),
                "predictions_oid": None, "created_at": now, "created_by": "bench"}])
    return a, b


def timed(fn, repeat: int) -> dict:
    """Wall time, and the CPU time of the subprocesses ``fn`` ran (user + system: on a shared
    machine the wall time of a command is mostly waiting for a core, its CPU time is not)."""
    import resource

    def cpu() -> float:
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        return ru.ru_utime + ru.ru_stime

    fn()
    xs, cs = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), cpu()
        fn()
        xs.append((time.perf_counter() - t) * 1000)
        cs.append((cpu() - c) * 1000)
    out = {"median_ms": round(statistics.median(xs), 1), "max_ms": round(max(xs), 1)}
    if any(cs):
        out["cpu_median_ms"] = round(statistics.median(cs), 1)
    return out


def cli_timed(args: list[str], cwd: Path, repeat: int) -> dict:
    cmd = [sys.executable, "-m", "lensvault.cli.main", *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LENSVAULT_")}

    def run():
        r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed: {r.stdout[-500:]} {r.stderr[-1500:]}")
        return r

    out = timed(run, repeat)
    out["output_lines"] = len(run().stdout.splitlines())
    out["heavy_imports"] = heavy_imports(args, cwd, env)
    return out


# Run as ``python -c``: the command, then which heavy packages it imported (on stderr, at exit).
_REPORT = ("import atexit, sys\n"
           "atexit.register(lambda: print('HEAVY=' + ','.join(sorted({m.split('.')[0] for m in sys.modules} "
           "& {'sqlalchemy', 'pyarrow', 'numpy', 'psycopg', 'PIL'})), file=sys.stderr))\n"
           "from lensvault.cli.main import main\n"
           "main()\n")


def heavy_imports(args: list[str], cwd: Path, env: dict) -> list[str]:
    """The heavy packages a command imports (SQLAlchemy's import alone is most of 200 ms)."""
    r = subprocess.run([sys.executable, "-c", _REPORT, *args], cwd=cwd, env=env, capture_output=True, text=True)
    last = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
    return [m for m in last.removeprefix("HEAVY=").split(",") if m]


def cli_timed_raw(args: list[str], cwd: Path, repeat: int) -> dict:
    """The interpreter with ``args`` (what any command that reads the catalog pays before it starts)."""
    return timed(lambda: subprocess.run([sys.executable, *args], cwd=cwd, check=True), repeat)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--points-per-run", type=int, default=100)
    ap.add_argument("--models", type=int, default=1_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--keep", help="build the vault in this (new) folder and keep it; reuse it if it exists")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    import lensvault

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-catalog-"))
    info_file = root / "info.json"
    if info_file.is_file():
        vault = lensvault.open(root / "vault")
        info = json.loads(info_file.read_text())
    else:
        vault = lensvault.init(root / "vault")
        t = time.perf_counter()
        info = fill(vault, n_runs=args.runs, n_models=args.models, n_datasets=args.datasets)
        info["metric_points"] = fill_points(vault, args.points_per_run)
        info["fill_s"] = round(time.perf_counter() - t, 1)
        info_file.write_text(json.dumps(info))
    cwd = root / "vault"
    hot, typical, name = info["hot_dataset"], info["typical_dataset"], info["hot_dataset"].split("@")[0]
    wa, wb = add_why_pair(vault, hot)
    # What each command asks the library for: the table and the tree show the newest 50
    # (runs list, lineage --down); --json and --all ask for every one.
    in_process = {
        "dataset log": timed(lambda: vault.dataset_log(name), args.repeat),
        "runs list (newest 50)": timed(lambda: vault.runs(limit=50), args.repeat),
        "runs list --json (every run)": timed(lambda: vault.runs(), args.repeat),
        f"lineage {hot} --down (hot, newest 50)": timed(lambda: vault.lineage(hot, direction="down", limit=50),
                                                        args.repeat),
        f"lineage {hot} --down --json (hot, all)": timed(lambda: vault.lineage(hot, direction="down"), args.repeat),
        f"lineage {typical} --down": timed(lambda: vault.lineage(typical, direction="down", limit=50), args.repeat),
        f"why {wa} {wb}": timed(lambda: vault.why(wa, wb), args.repeat),
        f"lineage {info['model']}": timed(lambda: vault.lineage(info["model"]), args.repeat),
        "model history": timed(lambda: vault.model_history("mdl0"), args.repeat),
    }
    vault.close()
    cli = {
        "dataset log": cli_timed(["dataset", "log", name], cwd, args.repeat),
        "runs list (newest 50)": cli_timed(["runs", "list"], cwd, args.repeat),
        f"lineage {hot} --down (hot, newest 50)": cli_timed(["lineage", hot, "--down"], cwd, args.repeat),
        f"lineage {typical} --down": cli_timed(["lineage", typical, "--down"], cwd, args.repeat),
        f"why {wa} {wb}": cli_timed(["why", wa, wb], cwd, args.repeat),
        f"lineage {info['model']}": cli_timed(["lineage", info["model"]], cwd, args.repeat),
        "--help (start-up alone)": cli_timed(["--help"], cwd, args.repeat),
        "python -c 'import sqlalchemy'": cli_timed_raw(["-c", "import sqlalchemy"], cwd, args.repeat),
        "python -c pass (the interpreter alone)": cli_timed_raw(["-c", "pass"], cwd, args.repeat),
    }
    out = {"catalog": info, "in_process": in_process, "cli": cli, "load_average_1min": os.getloadavg()[0],
           "python": sys.version.split()[0]}
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"catalog: {info['dataset_versions']:,} dataset versions, {info['runs']:,} runs, "
          f"{info['metric_points']:,} metric points, {info['model_versions']:,} model versions, "
          f"{info['evaluations']:,} evaluations (filled in {info.get('fill_s', '?')} s); load {out['load_average_1min']:.1f}")
    for label, rows in (("in-process", in_process), ("as a command", cli)):
        print(label)
        for k, v in rows.items():
            extra = f", {v['output_lines']} lines" if "output_lines" in v else ""
            extra += f", CPU {v['cpu_median_ms']:.0f} ms" if "cpu_median_ms" in v else ""
            extra += f", imports {','.join(v['heavy_imports']) or 'nothing heavy'}" if "heavy_imports" in v else ""
            print(f"  {k:<44} median {v['median_ms']:>8.1f} ms (max {v['max_ms']:.1f}{extra})")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
