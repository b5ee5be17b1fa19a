"""Fixtures for the vault-core tests (the shared ones live in tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

# test_smoke.py imports write_files from "conftest"; with this file present that
# name resolves here, so re-export it.
from _lvtest import write_files  # noqa: F401


@pytest.fixture
def small_tmpfs(tmp_path):
    """A factory for tiny tmpfs mounts (full-disk tests); skipped where mount is not allowed."""
    mounts: list[Path] = []

    def make(size: str = "2m") -> Path:
        d = tmp_path / f"tmpfs-{uuid.uuid4().hex[:6]}"
        d.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(d)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here ({r.stderr.strip() or r.returncode}); "
                        "the full-disk path is untested in this environment")
        mounts.append(d)
        return d

    yield make
    for d in mounts:
        subprocess.run(["umount", "-l", str(d)], capture_output=True)


@pytest.fixture
def coarse_fs(tmp_path):
    """A folder on a filesystem with 1-second timestamps (ext4 with 128-byte inodes, loop-mounted).

    Skipped where loop mounts are not allowed; the racy-stat-cache rule is then only tested
    with sub-second timestamps.
    """
    img = tmp_path / "coarse.img"
    mnt = tmp_path / "coarse"
    mnt.mkdir()
    with open(img, "wb") as f:
        f.truncate(64 << 20)
    made = subprocess.run(["mkfs.ext4", "-q", "-F", "-I", "128", str(img)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot make an ext4 image here ({made.stderr.strip() or made.returncode})")
    r = subprocess.run(["mount", "-o", "loop", str(img), str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot loop-mount a filesystem here ({r.stderr.strip() or r.returncode}); "
                    "the 1-second-timestamp case is untested in this environment")
    probe = mnt / "probe"
    probe.write_bytes(b"x")
    assert os.stat(probe).st_mtime_ns % 1_000_000_000 == 0, "expected whole-second timestamps"
    probe.unlink()
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.fixture
def bccd_jpegs(bccd_dir, tmp_path) -> Path:
    """A few real BCCD JPEGs copied into a fresh source folder."""
    import shutil

    src_dir = bccd_dir / "BCCD" / "JPEGImages"
    names = sorted(os.listdir(src_dir))[:4]
    out = tmp_path / "bccd-src"
    out.mkdir()
    for n in names:
        shutil.copyfile(src_dir / n, out / n)
    return out
