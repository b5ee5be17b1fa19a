"""``dataset diff`` in memory that does not grow with the file count, measured in a subprocess.

Its peak RSS on two versions of BIG files minus its peak on two versions of SMALL files, over
the difference in files (as in test_memory_scale.py; no timing is asserted). Both sizes are
several row groups (``files_table.ROW_GROUP_ROWS``): Arrow's allocator keeps what the first
few groups freed, so the peak levels off after ~3 groups (196,608 rows) and only what grows per
file shows above that. Reading both tables whole held ~0.5 KB a file.

The versions are committed from generated rows, not folders (250,000 files would take minutes
to write and hash): their paths are real, their contents a pool of stored objects shared by
many paths, which is all a diff reads.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from _lvtest import LV, _env

import lensvault
from lensvault.datasets import files_table
from lensvault.datasets.snapshot import commit_version

pytestmark = pytest.mark.slow

SMALL, BIG = 200_000, 450_000
POOL = 61  # distinct contents (a prime: neighbouring paths never share one by the pattern)


def _versions(root: Path, n: int) -> Path:
    """A vault with ds@1.0.0 of ``n`` files and ds@1.1.0: one modified, one removed, one added."""
    vault = lensvault.init(root / "vault")
    try:
        oids = [vault.store.put_bytes(b"content %d\n" % k) for k in range(POOL)]
        paths = [f"d{i // 1000:04d}/f{i:07d}.bin" for i in range(n)]
        sha = [oids[i % POOL] for i in range(n)]
        sizes = [len(b"content %d\n" % (i % POOL)) for i in range(n)]

        def commit(version: str, paths: list[str], sha: list[str], sizes: list[int]) -> None:
            k = len(paths)
            rows = files_table.FileRows(paths, sizes, sha, ["application/octet-stream"] * k, [None] * k, [None] * k)
            commit_version(vault, name="ds", version=version, files=rows)

        commit("1.0.0", paths, sha, sizes)
        mid = n // 2
        sha[mid], sizes[mid] = oids[(mid + 1) % POOL], sizes[mid + 1]
        del paths[n // 3], sha[n // 3], sizes[n // 3]
        paths.append("zz/new.bin")
        sha.append(oids[5])
        sizes.append(sizes[5])
        commit("1.1.0", paths, sha, sizes)
    finally:
        vault.close()
    return root / "vault"


# Starts the command and reports its peak RSS (KB). A child forked from this test's process
# would start its peak at the size of this process (Linux keeps the high-water mark across
# fork and exec), which grows with the rows built above: a small launcher starts it instead.
_LAUNCH = ("import os, subprocess, sys\n"
           "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
           "_, status, usage = os.wait4(p.pid, 0)\n"
           "print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)\n")


def _peak_mb(*args: object) -> float:
    """Peak RSS (MB) of one CLI command and the processes it waited for."""
    r = subprocess.run([sys.executable, "-c", _LAUNCH, *LV, *map(str, args)], env=_env(None), capture_output=True,
                       text=True, timeout=300)
    code, kb = r.stdout.split()
    assert code == "0", r.stderr
    return int(kb) / 1024


def test_memory_of_a_diff_does_not_grow_with_the_file_count(tmp_path: Path) -> None:
    peaks = {}
    for n in (SMALL, BIG):
        vault = _versions(tmp_path / str(n), n)
        peaks[n] = _peak_mb("--vault", vault, "dataset", "diff", "ds@1.0.0", "ds@1.1.0", "--json")
    kb = (peaks[BIG] - peaks[SMALL]) * 1024 / (BIG - SMALL)
    # Measured (450,000 vs 200,000 files): ~0.00 KB a file; 0.5 KB when both tables were read whole.
    assert kb < 0.05, (kb, peaks)
