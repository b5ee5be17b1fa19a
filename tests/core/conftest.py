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
