"""Time ``lineage`` on a catalog with 10,000 runs, 1,000 model versions and 500 dataset versions.

    python benchmarks/bench_lineage.py [--runs 10000] [--models 1000] [--datasets 500] [--repeat 10]
                                       [--catalog URL] [--keep DIR] [--json]

Rows are inserted directly with SQLAlchemy Core into a fresh vault's catalog (SQLite inside
the vault unless --catalog names another database); lineage reads only the catalog, so the
manifests need not exist in the store. The catalog:

* 20 datasets x 25 versions, each version derived from the previous one (a 25-long chain);
* 200 configs; 10,000 runs spread over the dataset versions, except that one "hot" version
  (ds00@1.24.0) is the data of 20% of the runs (2,000 runs);
* 10 models x 100 versions, each from its own run (the hot version's runs get 200 of them);
  production and staging aliases on every model;
* 3 evaluations per model version (its run's predictions on two datasets, the model on one more)
  and one for every other 5th run: ~4,800 evaluations; reproduce runs for 1 model in 10.

Timed in-process, after one warm-up, median (and min/max) of --repeat calls:

* ``vault.lineage("mdl0@1.99.0")`` (up: run, commit, config, 25-long dataset chain,
  evaluations, aliases) — target < 200 ms;
* ``vault.lineage("ds00@1.24.0", direction="down")`` (2,000 runs, 200 models, evaluations,
  aliases) — target < 500 ms; a typical version (~16 runs) is timed too.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

TARGETS_MS = {"model_up": 200.0, "dataset_down_hot": 500.0}


def fill(vault, *, n_runs: int, n_models: int, n_datasets: int, seed: int = 0) -> dict:
    import sqlalchemy as sa

    from lensvault.catalog import registry_schema as r
    from lensvault.catalog import runs_schema as s
    from lensvault.catalog import schema as c

    rnd = random.Random(seed)
    now = "2026-01-01T00:00:00.000000Z"
    hexid = lambda: f"{rnd.getrandbits(256):064x}"  # noqa: E731
    names = [f"ds{i:02d}" for i in range(20)]
    per = max(1, n_datasets // len(names))
    snaps, versions, dsrefs = [], [], []
    for name in names:
        for k in range(per):
            sid = hexid()
            snaps.append({"snapshot_id": sid, "snapshot_oid": hexid(), "files_oid": hexid(), "file_count": 1000,
                          "total_bytes": 10 ** 8, "annotations_oid": hexid(), "images_oid": hexid(), "created_at": now})
            versions.append({"name": name, "version": f"1.{k}.0", "major": 1, "minor": k, "patch": 0,
                             "snapshot_id": sid, "manifest_oid": hexid(), "parent": f"1.{k - 1}.0" if k else None,
                             "file_count": 1000, "total_bytes": 10 ** 8, "notes": "", "bump": "minor" if k else None,
                             "changelog": json.dumps({"summary": f"{k * 10} boxes changed"}) if k else None,
                             "created_at": now, "created_by": "bench"})
            dsrefs.append(f"{name}@1.{k}.0")
    hot = f"{names[0]}@1.{per - 1}.0"
    configs = [{"config_id": f"C-{i:03d}", "sha256": hexid(), "canonical_sha256": hexid(),
                "repo_path": f"configs/c{i}.yaml", "commit": hexid()[:40], "format": "yaml",
                "content": json.dumps({"lr": 0.01 * i}), "created_at": now, "created_by": "bench"} for i in range(200)]
    commits = [hexid()[:40] for _ in range(500)]
    runs, run_ds = [], {}
    for i in range(n_runs):
        ds = hot if i % 5 == 0 else rnd.choice(dsrefs)
        rid = f"2026-01-01T00-00-00Z-{i:05d}"
        run_ds[rid] = ds
        runs.append({"run_id": rid, "status": "succeeded", "kind": "run", "code_commit": rnd.choice(commits),
                     "clean": True, "repo_root": "/repo", "dataset": ds, "dataset_snapshot": hexid(),
                     "config_id": rnd.choice(configs)["config_id"], "seeds": '{"train": 1}',
                     "command": '["python", "train.py"]', "cwd": "/repo", "environment_oid": hexid(),
                     "started_at": now, "ended_at": now, "created_by": "bench", "exit_code": 0})
    run_ids = list(run_ds)
    models, files, aliases, evals = [], [], [], []
    per_model = max(1, n_models // 10)
    step = max(1, n_runs // n_models)
    # Spread over the run ids so that 1 model in 5 comes from a run on the hot version.
    model_runs = [run_ids[min(len(run_ids) - 1, j * step + j % 5)] for j in range(n_models)]
    for j, rid in enumerate(model_runs):
        name, k = f"mdl{j % 10}", j // 10
        ver = f"1.{k}.0"
        models.append({"name": name, "version": ver, "major": 1, "minor": k, "patch": 0, "run_id": rid,
                       "bundle_oid": hexid(), "dataset": run_ds[rid], "config_id": "C-000", "code_commit": commits[0],
                       "metrics": '{"AP50": 0.5}', "release_notes": "", "bump": "minor", "created_at": now,
                       "created_by": "bench"})
        files.append({"name": name, "version": ver, "file": "model.pt", "role": "weights", "sha256": hexid(),
                      "size": 1})
        ev = {"dataset_snapshot": hexid(), "split": "test", "metrics": json.dumps({"overall": {"AP": 0.4, "AP50": 0.6}}),
              "predictions_oid": hexid(), "created_at": now, "created_by": "bench"}
        evals.append({**ev, "eval_id": f"eval-m{j}-a", "run_id": rid, "model_name": None, "model_version": None,
                      "dataset": run_ds[rid]})
        evals.append({**ev, "eval_id": f"eval-m{j}-b", "run_id": rid, "model_name": None, "model_version": None,
                      "dataset": rnd.choice(dsrefs)})
        evals.append({**ev, "eval_id": f"eval-m{j}-c", "run_id": rid, "model_name": name, "model_version": ver,
                      "dataset": rnd.choice(dsrefs)})
        if j % 10 == 0:
            runs.append({**runs[0], "run_id": f"2026-01-02T00-00-00Z-r{j:04d}", "kind": "reproduce",
                         "dataset": run_ds[rid], "reproduces": f"{name}@{ver}"})
    for m in range(10):
        aliases.append({"name": f"mdl{m}", "alias": "production", "version": f"1.{per_model - 1}.0", "updated_at": now,
                        "move_id": 2 * m + 1})
        aliases.append({"name": f"mdl{m}", "alias": "staging", "version": f"1.{per_model - 2}.0", "updated_at": now,
                        "move_id": 2 * m + 2})
    for i, rid in enumerate(run_ids):
        if i % 5 == 1:
            evals.append({"eval_id": f"eval-r{i}", "run_id": rid, "model_name": None, "model_version": None,
                          "dataset": run_ds[rid], "dataset_snapshot": hexid(), "split": "val",
                          "metrics": json.dumps({"overall": {"AP": 0.3, "AP50": 0.5}}), "predictions_oid": hexid(),
                          "created_at": now, "created_by": "bench"})
    with vault.catalog.begin() as conn:
        for table, rows in ((c.snapshots, snaps), (c.dataset_versions, versions), (s.configs, configs),
                            (s.runs, runs), (r.model_versions, models), (r.model_files, files),
                            (r.aliases, aliases), (s.evaluations, evals)):
            for i in range(0, len(rows), 2000):
                conn.execute(sa.insert(table), rows[i:i + 2000])
    return {"dataset_versions": len(versions), "configs": len(configs), "runs": len(runs), "model_versions": len(models),
            "evaluations": len(evals), "aliases": len(aliases), "hot_dataset": hot,
            "hot_runs": sum(1 for d in run_ds.values() if d == hot), "typical_dataset": f"{names[5]}@1.{per // 2}.0",
            "model": f"mdl0@1.{per_model - 1}.0", "model_alias": "mdl3@production"}


def timed(fn, repeat: int) -> dict:
    fn()  # warm-up
    xs = []
    for _ in range(repeat):
        t = time.perf_counter()
        g = fn()
        xs.append((time.perf_counter() - t) * 1000)
    return {"median_ms": round(statistics.median(xs), 1), "min_ms": round(min(xs), 1), "max_ms": round(max(xs), 1),
            "nodes": len(g.nodes), "edges": len(g.edges)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--models", type=int, default=1_000)
    ap.add_argument("--datasets", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--catalog", help="a catalog URL (default: SQLite inside the temporary vault)")
    ap.add_argument("--keep", help="build the vault in this (new) folder and keep it")
    ap.add_argument("--json", action="store_true", help="print one JSON object only")
    args = ap.parse_args(argv)

    import lensvault

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-lineage-"))
    vault = lensvault.init(root / "vault", catalog=args.catalog)
    t = time.perf_counter()
    info = fill(vault, n_runs=args.runs, n_models=args.models, n_datasets=args.datasets)
    info["fill_s"] = round(time.perf_counter() - t, 1)
    results = {
        "model_up": timed(lambda: vault.lineage(info["model"]), args.repeat),
        "model_alias_up": timed(lambda: vault.lineage(info["model_alias"]), args.repeat),
        "model_both": timed(lambda: vault.lineage(info["model"], direction="both"), args.repeat),
        "dataset_down_hot": timed(lambda: vault.lineage(info["hot_dataset"], direction="down"), args.repeat),
        "dataset_down_typical": timed(lambda: vault.lineage(info["typical_dataset"], direction="down"), args.repeat),
        "config_down": timed(lambda: vault.lineage("C-007", direction="down"), args.repeat),
    }
    vault.close()
    verdicts = {k: ("PASS" if results[k]["median_ms"] < v else "FAIL") for k, v in TARGETS_MS.items()}
    out = {"catalog": info, "results": results, "targets_ms": TARGETS_MS, "verdicts": verdicts,
           "backend": (args.catalog or "sqlite").split(":")[0], "python": sys.version.split()[0]}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"catalog: {info['runs']} runs, {info['model_versions']} model versions, {info['dataset_versions']} "
              f"dataset versions, {info['evaluations']} evaluations (filled in {info['fill_s']} s)")
        for k, v in results.items():
            tgt = TARGETS_MS.get(k)
            print(f"  {k:<22} median {v['median_ms']:>7.1f} ms  (min {v['min_ms']:.1f}, max {v['max_ms']:.1f}; "
                  f"{v['nodes']} nodes, {v['edges']} edges)" + (f"  target < {tgt:.0f} ms: {verdicts[k]}" if tgt else ""))
        print(json.dumps(out))
    return 0 if all(v == "PASS" for v in verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
