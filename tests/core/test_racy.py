"""The stat cache is never trusted for a file that changed in the same timestamp tick (state.racy).

Like git's "racy git" rule: a key whose mtime or ctime is not a tick older than the moment
the file was stat'ed is cached as unsure and the file is read again next time; a copy-mode
snapshot compares the whole key (ctime too) after storing; a hardlink snapshot compares the
key taken right after the read. Tried on a filesystem with 1-second timestamps (a
loop-mounted ext4 with 128-byte inodes) and with files rewritten while they are hashed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from _lvtest import LV, _env, settle, version_refs, write_files

import lensvault
from lensvault.state import UNSURE, racy, racy_many, stat_key


def test_racy_uses_a_two_second_tick_for_whole_second_timestamps():
    s = 1_800_000_000 * 10**9
    assert racy((1, 1, s, s), s + 1_999_999_999)  # 1 s filesystems, and vfat's 2 s mtime
    assert not racy((1, 1, s, s), s + 2_000_000_000)
    fine = s + 123_456_789
    assert racy((1, 1, fine, fine), fine + 19_000_000)
    assert not racy((1, 1, fine, fine), fine + 20_000_000)
    # A ctime moved by our own hardlink does not count when told so; an old mtime then decides.
    old = s - 10 * 10**9
    assert racy((1, 1, old, fine), fine + 1_000_000)
    assert not racy((1, 1, old, fine), fine + 1_000_000, ctime=False)
    # The one-pass form agrees with the rule, key by key.
    keys = [(1, 1, t, c) for t in (old, s, fine) for c in (old, s, fine)] + [None]
    for seen in (fine + 1_000_000, fine + 30_000_000, s + 2_500_000_000):
        for ctime in (True, False):
            assert racy_many(keys, seen, ctime=ctime) == [
                i for i, k in enumerate(keys) if k is not None and racy(k, seen, ctime=ctime)]


def test_files_snapshotted_within_their_tick_are_read_again_then_trusted(sqlite_vault, tmp_path):
    sqlite_vault.snapshot("warm", write_files(tmp_path / "w", {"x": "x"}), version="1.0.0")  # imports done
    src = write_files(tmp_path / "src", {f"f{i}.txt": f"file {i}" for i in range(5)})
    sqlite_vault.snapshot("ds", src, version="1.0.0")  # at once: every file is younger than a tick
    index = sqlite_vault.state.index(os.path.realpath(src))
    assert {e[2] for e in index.values()} == {UNSURE}
    settle()
    sqlite_vault.snapshot("ds", src, version="1.0.1", force=True)
    index = sqlite_vault.state.index(os.path.realpath(src))
    assert all(index[rel][:4] == stat_key(os.stat(src / rel)) for rel in index)  # now trusted


def _next_second() -> None:
    time.sleep(1.02 - time.time() % 1)


def _rewrite_keeping_mtime(path, data: bytes) -> None:
    """In place, same size, mtime put back: what `cp -p` onto an existing file or `rsync --inplace` do."""
    st = os.stat(path)
    with open(path, "r+b") as f:
        f.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.mark.parametrize("how", ["status", "snapshot"])
def test_a_same_second_rewrite_on_a_one_second_filesystem_is_seen(tmp_path, coarse_fs, how):
    vault = lensvault.init(tmp_path / "vault")
    try:
        vault.snapshot("warm", write_files(tmp_path / "w", {"x": "x"}), version="1.0.0")  # imports done
        src = coarse_fs / "src"
        for attempt in range(3):
            _next_second()
            write_files(src, {"a.bin": b"A" * 4096, "b.bin": b"b" * 10})
            v1 = vault.snapshot("ds", src, version=f"1.0.{attempt}", link="copy", force=True)
            before = stat_key(os.stat(src / "a.bin"))
            _rewrite_keeping_mtime(src / "a.bin", b"Z" * 4096)
            if stat_key(os.stat(src / "a.bin")) == before:
                break  # the rewrite left the whole key as it was: the case under test
        else:
            pytest.skip("could not rewrite within the same second (machine too busy)")
        if how == "status":
            st = vault.status(v1.ref, src)
            assert st.modified == ["a.bin"]
        else:
            v2 = vault.snapshot("ds", src, version="2.0.0", link="copy", force=True)
            got = dict(zip(*[v2.files()[c].to_pylist() for c in ("path", "sha256")]))
            import hashlib

            assert got["a.bin"] == hashlib.sha256(b"Z" * 4096).hexdigest()
    finally:
        vault.close()


_REWRITER = r"""
import os, sys, time
pid, path = int(sys.argv[1]), sys.argv[2]
deadline = time.monotonic() + 60
def holds(p):
    try:
        return any(os.readlink(f"/proc/{p}/fd/{fd}") == path for fd in os.listdir(f"/proc/{p}/fd"))
    except OSError:
        return False
while time.monotonic() < deadline and not holds(pid):
    time.sleep(0.0005)
st = os.stat(path)
with open(path, "r+b") as f:
    f.seek(st.st_size // 2)
    f.write(b"rewritten while it was being read")
os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
print("rewrote", flush=True)
"""


@pytest.mark.parametrize("link", ["copy", "hardlink"])
def test_a_file_rewritten_while_it_is_hashed_is_refused(sqlite_vault, tmp_path, link):
    """Same size, mtime put back: only the ctime shows it. The snapshot must not commit the
    torn read (or, had it finished first, commit the old bytes and re-read the file next time)."""
    src = tmp_path / "src"
    src.mkdir()
    big = src / "big.bin"
    with open(big, "wb") as f:
        f.writelines(os.urandom(1 << 20) for i in range(96))
    (src / "small.txt").write_text("small")
    settle()
    proc = subprocess.Popen([*LV, "--vault", str(sqlite_vault.root), "dataset", "snapshot", "ds", str(src),
                             "--version", "1.0.0", "--link", link],
                            env=_env({"LENSVAULT_WORKERS": "1"}), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    rewriter = subprocess.run([sys.executable, "-c", _REWRITER, str(proc.pid), os.path.realpath(big)],
                              capture_output=True, text=True, timeout=120)
    _out, err = proc.communicate(timeout=120)
    assert "rewrote" in rewriter.stdout, rewriter.stderr
    if proc.returncode == 0:
        # The read finished before the rewrite: the old bytes were recorded, and the file's
        # new key makes the next snapshot read it again.
        v2 = sqlite_vault.snapshot("ds", src, version="1.0.1", link=link)
        assert v2.snapshot_id != sqlite_vault.dataset("ds@1.0.0").snapshot_id
    else:
        assert proc.returncode == 6, err
        assert "changed while it was being snapshotted" in err and str(big) in err
        assert version_refs(sqlite_vault) == []
    # Whatever was committed is true of the bytes the store holds.
    assert sqlite_vault.verify().ok
