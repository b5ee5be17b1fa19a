"""A download killed with SIGKILL (pull, fetch, a checkout's automatic fetch) leaves what it had
staged inside the vault's store — named after the dead process, where ``gc`` finds and removes
leftovers — never in the system's temp folder, where nothing would ever remove it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lensvault

from .conftest import CREDENTIALS, lv, lv_json, remote_args, single_objects


def _staged(vault_root: Path) -> list[Path]:
    """Files in download staging folders of the vault's store."""
    return [p for d in (vault_root / ".lensvault" / "objects" / "tmp").glob("*-fetch-*") for p in d.rglob("*")
            if p.is_file()]


def test_a_pull_killed_mid_download_leaves_its_staging_where_gc_removes_it(tmp_path, remote_url, monkeypatch):
    url, endpoint = remote_url
    single_objects(monkeypatch)  # one GET per file: a batch of them is staged before it is stored
    src = tmp_path / "src"
    src.mkdir()
    for i in range(1500):
        (src / f"img_{i:05d}.bin").write_bytes(os.urandom(2048))
    a = lensvault.init(tmp_path / "a")
    a.snapshot("frames", src, version="1.0.0")
    a.close()
    lv_json("remote", "add", "origin", *remote_args(url, endpoint), cwd=a.root)
    lv_json("push", "--all", cwd=a.root)

    b = lensvault.init(tmp_path / "b")
    b.close()
    lv_json("remote", "add", "origin", *remote_args(url, endpoint), cwd=b.root)
    scratch = tmp_path / "system-tmp"
    scratch.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LENSVAULT_")} | CREDENTIALS
    env["TMPDIR"] = str(scratch)
    proc = subprocess.Popen([sys.executable, "-m", "lensvault.cli.main", "pull", "frames@1.0.0", "--jobs", "1"],
                            cwd=b.root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while not _staged(b.root):
        assert proc.poll() is None, "the pull ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    assert list(scratch.iterdir()) == []  # nothing of it in the system's temp folder
    left = _staged(b.root)
    assert left, "the kill landed after the staged files were stored"
    plan = lv_json("gc", cwd=b.root)
    staged_dirs = {str(p.parent) for p in left}
    assert staged_dirs <= {x["path"] for x in plan["plan"]["leftovers"]}, plan
    lv_json("gc", "--yes", cwd=b.root)
    assert _staged(b.root) == [] and list((b.root / ".lensvault" / "objects" / "tmp").iterdir()) == []

    # Pulling again completes; everything that came is whole.
    pulled = lv_json("pull", "frames@1.0.0", cwd=b.root)
    assert pulled["added"]["dataset_versions"] == 1
    r = lv("verify", cwd=b.root)
    assert r.returncode == 0 and "0 missing, 0 corrupt" in r.stdout, r.stdout
