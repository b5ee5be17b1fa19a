"""Helper for core_vs_dvc.py: the 1,000,000-file manifest benchmark.

    python _manifest_1m.py build VAULT_DIR N      # big@1.0.0 and big@1.1.0 (~1% changed)
    python _manifest_1m.py open VAULT_DIR          # time open + files() of big@1.0.0
    python _manifest_1m.py diff VAULT_DIR          # time vault.diff(big@1.0.0, big@1.1.0)
    python _manifest_1m.py profile-open VAULT_DIR OUT.html / profile-diff ...

Objects named by the tables need not exist: open and diff read only the
manifest and the Parquet files table. ``open``/``diff`` are meant to run in a
fresh process each time (the driver does that); they print one JSON line with
seconds measured in-process from just before ``lensvault.open`` (so interpreter
start-up and ``import lensvault`` are excluded; the driver also records the
whole-process wall time).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time


def _oid(i: int, salt: str = "") -> str:
    return hashlib.sha256(f"{salt}{i}".encode()).hexdigest()


def build(vault_dir: str, n: int) -> None:
    from lensvault.datasets import files_table
    from lensvault.datasets.snapshot import commit_version
    from lensvault.vault import init_vault

    t0 = time.perf_counter()
    vault = init_vault(vault_dir)
    folders = 1000
    paths = [f"images/d{i % folders:04d}/img_{i:08d}.jpg" for i in range(n)]
    sizes = [10_000 + (i * 7919) % 40_000 for i in range(n)]
    oids = [_oid(i) for i in range(n)]
    mts = ["image/jpeg"] * n
    ws = [640] * n
    hs = [480] * n
    a = files_table.build(paths, sizes, oids, mts, ws, hs)
    commit_version(vault, name="big", version="1.0.0", files=a)

    # ~1% changed: 0.4% modified (new content), 0.3% removed, 0.3% added.
    step = 100
    b_paths, b_sizes, b_oids = [], [], []
    for i in range(n):
        r = i % (step * 10)
        if r in (0, 250, 500, 750):  # modified
            b_paths.append(paths[i])
            b_sizes.append(sizes[i] + 1)
            b_oids.append(_oid(i, "mod"))
        elif r in (100, 400, 700):  # removed
            continue
        else:
            b_paths.append(paths[i])
            b_sizes.append(sizes[i])
            b_oids.append(oids[i])
    added = n * 3 // 1000
    for j in range(added):
        b_paths.append(f"images/new/img_{j:08d}.jpg")
        b_sizes.append(20_000 + j)
        b_oids.append(_oid(j, "new"))
    m = len(b_paths)
    b = files_table.build(b_paths, b_sizes, b_oids, ["image/jpeg"] * m, [640] * m, [480] * m)
    commit_version(vault, name="big", version="1.1.0", files=b)
    vault.close()
    print(json.dumps({"built": n, "b_rows": m, "seconds": time.perf_counter() - t0}))


def op_open(vault_dir: str) -> dict:
    import lensvault

    t0 = time.perf_counter()
    v = lensvault.open(vault_dir)
    t = v.dataset("big@1.0.0").files()
    dt = time.perf_counter() - t0
    return {"op": "open", "rows": t.num_rows, "seconds": dt}


def op_diff(vault_dir: str) -> dict:
    import lensvault

    t0 = time.perf_counter()
    v = lensvault.open(vault_dir)
    d = v.diff("big@1.0.0", "big@1.1.0")
    dt = time.perf_counter() - t0
    return {
        "op": "diff", "seconds": dt,
        "added": len(d.added), "removed": len(d.removed), "modified": len(d.modified),
    }


def main(argv: list[str]) -> None:
    cmd, vault_dir = argv[0], argv[1]
    if cmd == "build":
        build(vault_dir, int(argv[2]))
    elif cmd in ("open", "diff"):
        fn = op_open if cmd == "open" else op_diff
        print(json.dumps(fn(vault_dir)))
    elif cmd in ("profile-open", "profile-diff"):
        from pyinstrument import Profiler

        fn = op_open if cmd == "profile-open" else op_diff
        p = Profiler(interval=0.0005)
        p.start()
        r = fn(vault_dir)
        p.stop()
        with open(argv[2], "w") as fh:
            fh.write(p.output_text(unicode=False, color=False, show_all=False))
        print(json.dumps(r))
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv[1:])
