"""Run tracking: LensVault vs MLflow (SQLite backend), side by side in one process.

    python3 -m venv .venv-bench && .venv-bench/bin/pip install mlflow -e .
    .venv-bench/bin/python benchmarks/bench_tracking_vs_mlflow.py [--points 100000] [--runs 10000]

1. Logging N metric points from one run: 10 metrics per step, N/10 steps, through each
   tool's per-step call (``lensvault.log_metrics(dict, step=)`` / ``mlflow.log_metrics(dict,
   step=)``), timed from the first call until the points are durable (LensVault: the end of
   ``start_run``'s block, which flushes; MLflow: ``end_run``). MLflow's batch call
   (``MlflowClient.log_batch``, 1,000 metrics per call, its documented maximum) is timed too.
2. Listing R runs with their latest metrics (``vault.runs()``), each run holding 5 metrics x 10 steps.

Both tools write to SQLite files in the same temp folder (same disk).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

METRICS_PER_STEP = 10


def _git(*args, cwd):
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "bench",
           "GIT_COMMITTER_EMAIL": "b@b"}
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def lensvault_project(base: Path):
    import lensvault
    from lensvault.demo.shapes import generate_shapes

    root = base / "lv"
    root.mkdir()
    _git("init", "-q", ".", cwd=root)
    vault = lensvault.init(root)
    generate_shapes(root / "raw", n_images=10, seed=1)
    (root / ".gitignore").write_text("raw/\n.lensvault/\nruns/\n")
    vault.snapshot("shapes", root / "raw", version="1.0.0", format="coco", split="70/20/10", seed=42)
    (root / "config.yaml").write_text("lr: 0.01\nseed: 1\n")
    _git("add", "-A", cwd=root)
    _git("commit", "-qm", "init", cwd=root)
    vault.add_config(root / "config.yaml", "C-01")
    return vault


def bench_lensvault_logging(vault, n_points: int) -> float:
    import lensvault

    steps = n_points // METRICS_PER_STEP
    names = [f"m{i}" for i in range(METRICS_PER_STEP)]
    with lensvault.start_run(dataset="shapes@1.0.0", config="C-01", vault=vault) as run:
        t0 = time.perf_counter()
        for s in range(steps):
            lensvault.log_metrics({k: s * 0.001 + i for i, k in enumerate(names)}, step=s)
        # the with-block's end flushes; time it as part of logging
        run.flush()
        elapsed = time.perf_counter() - t0
    got = vault.get_run(run.run_id)["metric_points"]
    assert got == steps * METRICS_PER_STEP, got
    return elapsed


def bench_mlflow_logging(base: Path, n_points: int) -> tuple[float, float]:
    import logging

    import mlflow
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    uri = f"sqlite:///{base / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("bench")
    steps = n_points // METRICS_PER_STEP
    names = [f"m{i}" for i in range(METRICS_PER_STEP)]
    with mlflow.start_run():
        t0 = time.perf_counter()
        for s in range(steps):
            mlflow.log_metrics({k: s * 0.001 + i for i, k in enumerate(names)}, step=s)
    per_step = time.perf_counter() - t0

    client = MlflowClient(uri)
    run = client.create_run(mlflow.get_experiment_by_name("bench").experiment_id)
    t0 = time.perf_counter()
    batch = []
    ts = int(time.time() * 1000)
    for s in range(steps):
        for i, k in enumerate(names):
            batch.append(Metric(k, s * 0.001 + i, ts, s))
            if len(batch) == 1000:
                client.log_batch(run.info.run_id, metrics=batch)
                batch = []
    if batch:
        client.log_batch(run.info.run_id, metrics=batch)
    client.set_terminated(run.info.run_id)
    batched = time.perf_counter() - t0
    return per_step, batched


def bench_listing(base: Path, n_runs: int, repeats: int = 7) -> tuple[float, int]:
    import json

    import lensvault
    from lensvault.catalog.catalog import utcnow
    from lensvault.catalog.runs_schema import runs
    from lensvault.runs.recorder import write_metric_points

    vault = lensvault.init(base / "listing")
    now = utcnow()
    rows = [{"run_id": f"2026-01-01T00-00-00Z-{i:06d}", "status": "succeeded", "kind": "run", "code_commit": "0" * 40,
             "clean": True, "dataset": "shapes@1.0.0", "config_id": "C-01", "seeds": json.dumps({"train": i}),
             "started_at": now, "ended_at": now, "created_by": "bench"} for i in range(n_runs)]
    with vault.catalog.begin() as conn:
        conn.execute(runs.insert(), rows)
    pts = [(r["run_id"], f"m{k}", s * 0.1 + k, s, None, None, now) for r in rows for k in range(5) for s in range(10)]
    for i in range(0, len(pts), 100_000):
        write_metric_points(vault, pts[i:i + 100_000])
    vault.close()
    times = []
    for _ in range(repeats):
        v = lensvault.open(base / "listing")
        v.runs(limit=1)  # open the engine and run the migrations check outside the timing
        t0 = time.perf_counter()
        listed = v.runs()
        times.append(time.perf_counter() - t0)
        v.close()
    assert len(listed) == n_runs and len(listed[0]["metrics"]) == 5
    return statistics.median(times), len(pts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--skip-mlflow", action="store_true")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="lv-bench-tracking-"))
    try:
        vault = lensvault_project(base)
        lv = bench_lensvault_logging(vault, args.points)
        vault.close()
        print(f"LensVault log_metrics, {args.points:,} points: {lv:.2f} s", flush=True)
        if not args.skip_mlflow:
            ml_step, ml_batch = bench_mlflow_logging(base, args.points)
            print(f"MLflow log_metrics (per step), {args.points:,} points: {ml_step:.2f} s "
                  f"-> LensVault/MLflow = {lv / ml_step:.3f}")
            print(f"MLflow log_batch (1,000 per call), {args.points:,} points: {ml_batch:.2f} s "
                  f"-> LensVault/MLflow = {lv / ml_batch:.3f}")
        listing, npts = bench_listing(base, args.runs)
        print(f"LensVault list {args.runs:,} runs with latest metrics ({npts:,} points stored): "
              f"{listing * 1000:.0f} ms (median of 7)")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
