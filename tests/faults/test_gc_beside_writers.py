"""gc with no grace period, looping in one process, beside snapshots in another: it cannot race them.

A writer pins what it relies on (store.pin) and commits under the gc lock after checking its
objects are all there (store.committing); gc deletes under that lock, reading the pins after
listing the objects. Whatever the interleaving, every snapshot commits a whole version or
(if its objects went between its checks) stores them again and commits then. Both orders —
gc first, writer first — on SQLite and PostgreSQL, with real processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from faults_harness import env, lv

pytestmark = pytest.mark.faults

_GC_LOOP = r"""
import sys, time, pathlib, lensvault
root, stop, out = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
n = deleted = 0
while not stop.exists():
    with lensvault.open(root) as v:
        plan = v.gc(grace_seconds=0, force=True)
        deleted += plan.execute()["deleted"]
    n += 1
    out.write_text(f"{n} {deleted}")
"""


def _folder(root: Path, n: int, salt: str) -> Path:
    for i in range(n):
        p = root / f"d{i % 12}" / f"f{i:05}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.unlink(missing_ok=True)
        p.write_bytes((f"{salt if i % 3 == 0 else ''}{i:06}|" * 50).encode())
    time.sleep(0.03)  # a timestamp tick: the stat cache may trust them
    return root


def _gc_loop(vault, tmp_path: Path) -> tuple[subprocess.Popen, Path, Path]:
    stop, out = tmp_path / "stop-gc", tmp_path / "gc-count"
    proc = subprocess.Popen([sys.executable, "-c", _GC_LOOP, str(vault.root), str(stop), str(out)], env=env(),
                            stderr=subprocess.PIPE, text=True)
    return proc, stop, out


def _gc_rounds(out: Path) -> int:
    try:
        return int(out.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _wait(cond, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


@pytest.mark.parametrize("order", ["gc first", "writer first"])
def test_gc_with_no_grace_loops_beside_snapshots(vault, tmp_path, order):
    src = _folder(tmp_path / "src", 3000, "v1")
    # Unreferenced objects the snapshots will deduplicate against: the case pins exist for.
    orphans = _folder(tmp_path / "orphans", 1200, "v2")
    from lensvault.hashing import hash_file

    vault.store.put_files([(str(p), hash_file(p).oid) for p in orphans.rglob("*.bin")])
    vault.store.release_pins()
    writes = [("ds", "1.0.0", "copy", "v1"), ("ds", "1.1.0", "hardlink", "v2"), ("ds", "1.2.0", "copy", "v3"),
              ("other", "1.0.0", "auto", "v2")]
    gc, stop, out = None, None, None
    if order == "gc first":
        gc, stop, out = _gc_loop(vault, tmp_path)
        _wait(lambda: _gc_rounds(out) >= 1)
    try:
        for i, (name, version, link, salt) in enumerate(writes):
            if i:
                _folder(src, 3000, salt)
            writer = subprocess.Popen([sys.executable, "-m", "lensvault.cli.main", "--vault", str(vault.root),
                                       "dataset", "snapshot", name, str(src), "--version", version, "--link", link],
                                      env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if gc is None:
                pins = Path(vault.store.root) / "pins"
                _wait(lambda: writer.poll() is not None or any(os.scandir(pins)))  # noqa: B023 - called here, in this iteration
                gc, stop, out = _gc_loop(vault, tmp_path)
            _so, se = writer.communicate(timeout=300)
            assert writer.returncode == 0, f"{name}@{version}: {se}"
    finally:
        if stop is not None:
            stop.touch()
        if gc is not None:
            _, gc_err = gc.communicate(timeout=120)
            assert gc.returncode == 0, gc_err
    assert _gc_rounds(out) >= 2
    report = vault.verify()
    assert report.ok, report.to_dict()
    refs = sorted(v.ref for d in vault.datasets() for v in vault.versions(d["name"]))
    assert refs == ["ds@1.0.0", "ds@1.1.0", "ds@1.2.0", "other@1.0.0"]
    # A last gc removes only what nothing needs, and leaves nothing of the writers behind.
    r = lv("--vault", vault.root, "gc", "--grace", "0", "--force", "--yes")
    assert r.returncode == 0 and vault.verify().ok
    assert os.listdir(Path(vault.store.root) / "tmp") == []
