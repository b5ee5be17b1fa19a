"""Bad input and faults: each a clear error (what / where / fix) and nothing half-written.

"Nothing half-written" is checked the same way everywhere: no new version is
visible, the store has no temp files, no manifest file appeared, and
``verify`` still passes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from _lvtest import (
    assert_nothing_half_written,
    lv_popen,
    manifest_files,
    oids_in_store,
    tmp_leftovers,
    version_refs,
    without_dac_override,
    write_files,
)

import lensvault
from lensvault.errors import InputError, StorageError


def _refused(vault, src, exc=InputError, **kw):
    refs, objs, mans = version_refs(vault), oids_in_store(vault), manifest_files(vault)
    with pytest.raises(exc) as ei:
        vault.snapshot("ds", src, version="9.0.0", **kw)
    e = ei.value
    assert e.what and e.where and e.fix, e.to_dict()
    assert_nothing_half_written(vault, refs_before=refs, manifests_before=mans)
    # scanning refuses before anything is hashed or stored
    return e, objs


# -- links, names, special files -------------------------------------------------------------------


def test_a_symlink_leading_outside_src_is_refused(sqlite_vault, tmp_path):
    secret = write_files(tmp_path / "elsewhere", {"passwd": "root:x:0:0"})
    src = write_files(tmp_path / "src", {"ok.txt": "fine"})
    os.symlink(secret / "passwd", src / "innocent.txt")
    e, objs = _refused(sqlite_vault, src)
    assert "outside" in e.what and str(secret / "passwd") in e.what
    assert e.where == str(src / "innocent.txt")
    assert oids_in_store(sqlite_vault) == objs


def test_a_symlinked_folder_leading_outside_src_is_refused(sqlite_vault, tmp_path):
    write_files(tmp_path / "elsewhere", {"x.txt": "x"})
    src = write_files(tmp_path / "src", {"ok.txt": "fine"})
    os.symlink(tmp_path / "elsewhere", src / "sub")
    e, _ = _refused(sqlite_vault, src)
    assert e.where == str(src / "sub")
    # A relative link that climbs out is the same thing.
    os.unlink(src / "sub")
    os.symlink("../elsewhere/x.txt", src / "climb.txt")
    e, _ = _refused(sqlite_vault, src)
    assert e.where == str(src / "climb.txt")


def test_symlinks_inside_src_are_followed(sqlite_vault, tmp_path):
    src = write_files(tmp_path / "src", {"real/a.txt": "alpha", "b.txt": "beta"})
    os.symlink("real", src / "alias")  # a folder inside
    os.symlink("b.txt", src / "b-link.txt")  # a file inside
    os.symlink(".", src / "real" / "loop")  # a loop back up: not walked twice
    ds = sqlite_vault.snapshot("ds", src, version="1.0.0")
    rows = {r["path"]: r["sha256"] for r in ds.files().to_pylist()}
    assert set(rows) >= {"real/a.txt", "b.txt", "alias/a.txt", "b-link.txt"}
    assert rows["alias/a.txt"] == rows["real/a.txt"] and rows["b-link.txt"] == rows["b.txt"]
    ds.checkout(tmp_path / "out")
    assert not (tmp_path / "out" / "b-link.txt").is_symlink()  # checked out as a regular file
    assert (tmp_path / "out" / "b-link.txt").read_text() == "beta"
    assert sqlite_vault.verify().ok


def test_a_broken_symlink_is_refused(sqlite_vault, tmp_path):
    src = write_files(tmp_path / "src", {"ok.txt": "fine"})
    os.symlink("does-not-exist.jpg", src / "dangling.jpg")
    e, _ = _refused(sqlite_vault, src)
    assert "does not exist" in e.what and e.where == str(src / "dangling.jpg")


def test_a_non_utf8_file_name_is_refused(sqlite_vault, tmp_path):
    src = write_files(tmp_path / "src", {"ok.txt": "fine", "sub/also-ok.txt": "x"})
    with open(os.path.join(os.fsencode(str(src / "sub")), b"bad\xff.jpg"), "wb") as f:
        f.write(b"\xff\xd8\xff")
    e, objs = _refused(sqlite_vault, src)
    assert "UTF-8" in e.what and "bad\\xff.jpg" in e.what
    assert e.where.startswith(str(src / "sub"))
    assert "rename" in e.fix
    assert oids_in_store(sqlite_vault) == objs  # refused before a single byte was stored


def test_a_255_byte_file_name_works_end_to_end(sqlite_vault, tmp_path):
    long_ascii = "a" * 251 + ".jpg"
    long_utf8 = "é" * 125 + "a.txt"  # 255 bytes, 130 characters
    assert len(long_ascii.encode()) == 255 and len(long_utf8.encode()) == 255
    src = write_files(tmp_path / "src", {long_ascii: b"\xff\xd8\xff\xe0", f"d/{long_utf8}": "accents"})
    ds = sqlite_vault.snapshot("ds", src, version="1.0.0")
    assert sorted(ds.files()["path"].to_pylist()) == sorted([long_ascii, f"d/{long_utf8}"])
    ds.checkout(tmp_path / "out")
    assert (tmp_path / "out" / "d" / long_utf8).read_text() == "accents"
    assert sqlite_vault.status(None, tmp_path / "out").clean
    (src / "new.txt").write_text("n")
    sqlite_vault.snapshot("ds", src, version="1.1.0")
    assert sqlite_vault.diff("ds@1.0.0", "ds@1.1.0").added == ["new.txt"]
    manifest = json.loads((sqlite_vault.manifests_dir / "ds" / "1.0.0.json").read_text(encoding="utf-8"))
    assert manifest["counts"]["files"] == 2
    assert sqlite_vault.verify().ok


def test_a_fifo_is_refused_without_blocking(sqlite_vault, tmp_path):
    # chmod 000 does not stop root, so the unreadable-file case is tested in a
    # subprocess without CAP_DAC_OVERRIDE below; special files are refused here.
    src = write_files(tmp_path / "src", {"ok.txt": "fine"})
    os.mkfifo(src / "pipe.jpg")
    e, _ = _refused(sqlite_vault, src)
    assert "not a regular file" in e.what and e.where == str(src / "pipe.jpg")


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_src_that_is_not_a_folder_is_refused(sqlite_vault, tmp_path, kind):
    src = tmp_path / "src"
    if kind == "file":
        src.write_text("a file")
    e, _ = _refused(sqlite_vault, src)
    assert e.where == str(src)


def test_unreadable_file_and_folder_are_clear_errors(sqlite_vault, tmp_path):
    """Run the CLI without the capabilities that let root read anything (runuser -u nobody cannot
    reach this interpreter, which lives under /root), so chmod 000 really denies the read."""
    prefix = without_dac_override()
    files = {f"f{i:03}.txt": f"file {i}" for i in range(100)}  # enough to hash on the thread pool
    src_file = write_files(tmp_path / "src1", files)
    os.chmod(src_file / "f050.txt", 0)
    src_dir = write_files(tmp_path / "src2", {"ok.txt": "fine", "locked/x.txt": "x"})
    os.chmod(src_dir / "locked", 0)
    refs, mans = version_refs(sqlite_vault), manifest_files(sqlite_vault)
    try:
        procs = [lv_popen("--vault", sqlite_vault.root, "dataset", "snapshot", "ds", s, "--version", "1.0.0",
                          prefix=prefix) for s in (src_file, src_dir)]
        results = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]
    finally:
        os.chmod(src_file / "f050.txt", 0o644)
        os.chmod(src_dir / "locked", 0o755)
    (rc1, _, err1), (rc2, _, err2) = results
    assert rc1 == 6, err1
    assert "cannot be read (permission denied)" in err1 and str(src_file / "f050.txt") in err1
    assert "fix: chmod u+r" in err1 and "Traceback" not in err1
    assert rc2 == 6, err2
    assert "folder cannot be read" in err2 and str(src_dir / "locked") in err2 and "fix:" in err2
    assert_nothing_half_written(sqlite_vault, refs_before=refs, manifests_before=mans)


# -- a full disk --------------------------------------------------------------------------------------


def test_a_full_store_disk_during_snapshot(tmp_path, small_tmpfs):
    disk = small_tmpfs("2m")
    vault = lensvault.init(tmp_path / "vault", store=str(disk / "objects"))
    try:
        src = write_files(tmp_path / "src", {f"img{i}.bin": os.urandom(400_000) for i in range(8)})  # 3.2 MB
        refs, mans = version_refs(vault), manifest_files(vault)
        with pytest.raises(StorageError) as ei:
            vault.snapshot("ds", src, version="1.0.0")
        e = ei.value
        assert "disk is full" in e.what and "free some space" in e.fix and e.where
        assert_nothing_half_written(vault, refs_before=refs, manifests_before=mans)
        # Once there is room, the same command works.
        for p in sorted(src.iterdir())[3:]:
            p.unlink()
        ds = vault.snapshot("ds", src, version="1.0.0")
        assert ds.record.files == 3 and vault.verify().ok
    finally:
        vault.close()


def test_a_full_dest_disk_during_checkout(sqlite_vault, tmp_path, small_tmpfs):
    src = write_files(tmp_path / "src", {f"d{i % 3}/img{i}.bin": os.urandom(150_000) for i in range(20)})  # 3 MB
    sqlite_vault.snapshot("ds", src, version="1.0.0")
    disk = small_tmpfs("2m")
    dest = disk / "out"
    with pytest.raises(StorageError) as ei:
        sqlite_vault.checkout("ds@1.0.0", dest, link="copy")
    assert "disk is full" in ei.value.what and ei.value.fix
    assert os.listdir(disk) == []  # no DEST, no hidden staging folder
    assert sqlite_vault.verify().ok


def test_a_full_vault_disk_is_a_storage_error(tmp_path, small_tmpfs):
    disk = small_tmpfs("3m")
    vault = lensvault.init(disk / "vault", store=str(tmp_path / "objects"),
                           catalog=f"sqlite:///{tmp_path / 'catalog.db'}")
    try:
        src = write_files(tmp_path / "src", {f"f{i:04}.txt": f"{i}" * 50 for i in range(3000)})
        with open(disk / "filler", "wb", buffering=0) as f:  # unbuffered: close has nothing left to flush
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:
                pass
        with pytest.raises(StorageError):
            vault.snapshot("ds", src, version="1.0.0")
    finally:
        vault.close()


# -- Ctrl-C -----------------------------------------------------------------------------------------


def _interrupt_when(proc: subprocess.Popen, started, timeout: float = 60) -> bool:
    """Send SIGINT once ``started()`` is true; False if the command finished first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if started():
            proc.send_signal(signal.SIGINT)
            return True
        time.sleep(0.002)
    proc.kill()
    raise AssertionError("the command never started working")


def _many_files(root: Path, n: int) -> Path:
    root.mkdir()
    for i in range(n):
        d = root / f"d{i % 20:02}"
        d.mkdir(exist_ok=True)
        (d / f"{i:05}.bin").write_bytes(b"%05d" % i * 200)
    return root


@pytest.fixture(scope="module")
def big_src(tmp_path_factory):
    return _many_files(tmp_path_factory.mktemp("big") / "src", 2500)


def _finished(proc: subprocess.Popen, timeout: float = 120) -> tuple[str, str]:
    """The command's output once it has ended; killed (and the test failed) if it hangs, so
    that no stray process outlives the test."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"the command did not end within {timeout} s of Ctrl-C (hung)")


def test_ctrl_c_during_snapshot(sqlite_vault, big_src):
    vault = sqlite_vault
    tmp_dir = vault.store.root / "tmp"
    proc = lv_popen("--vault", vault.root, "dataset", "snapshot", "ds", big_src, "--version", "1.0.0")
    sent = _interrupt_when(proc, lambda: any(os.scandir(tmp_dir)))
    _out, err = _finished(proc)
    if not sent:
        pytest.fail(f"the snapshot finished before it could be interrupted (rc={proc.returncode}); use more files")
    assert proc.returncode == 130, err
    # click turns KeyboardInterrupt into Abort ("Aborted."), so the library's own
    # "Interrupted: ..." message is never shown; the exit code is what scripts rely on.
    assert "Traceback" not in err
    assert_nothing_half_written(vault, refs_before=[], manifests_before=[])


def test_ctrl_c_during_checkout(sqlite_vault, big_src, tmp_path):
    vault = sqlite_vault
    vault.snapshot("ds", big_src, version="1.0.0")
    work = tmp_path / "work"
    work.mkdir()
    dest = work / "dest"
    proc = lv_popen("--vault", vault.root, "dataset", "checkout", "ds@1.0.0", dest, "--link", "copy")

    def started():
        # the hidden staging folder exists and has its first files
        staging = [e.path for e in os.scandir(work) if e.name.startswith(".lensvault-checkout-")]
        try:
            return bool(staging) and any(os.scandir(os.path.join(staging[0], "d00")))
        except FileNotFoundError:
            return False

    sent = _interrupt_when(proc, started)
    _out, err = _finished(proc)
    if not sent:
        pytest.fail(f"the checkout finished before it could be interrupted (rc={proc.returncode})")
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert os.listdir(work) == []  # neither DEST nor the staging folder
    assert vault.verify().ok and tmp_leftovers(vault) == []


# -- two writers at once ------------------------------------------------------------------------------


def test_two_processes_snapshotting_the_same_version(vault, tmp_path):
    """Different content, same NAME@VER, started together: exactly one wins."""
    srcs = [write_files(tmp_path / f"src{k}", {f"f{i}.txt": f"writer {k} file {i}" for i in range(200)})
            for k in range(2)]
    procs = [lv_popen("--vault", vault.root, "dataset", "snapshot", "ds", s, "--version", "1.0.0", "--json")
             for s in srcs]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    codes = sorted(rc for rc, _, _ in results)
    assert codes == [0, 4], results
    winner = next(json.loads(out) for rc, out, _ in results if rc == 0)
    loser_err = next(err + out for rc, out, err in results if rc == 4)
    assert "ds@1.0.0 already exists" in loser_err and "Traceback" not in loser_err
    assert version_refs(vault) == ["ds@1.0.0"]
    assert vault.dataset("ds@1.0.0").snapshot_id == winner["snapshot_id"]
    manifest = json.loads((vault.manifests_dir / "ds" / "1.0.0.json").read_text())
    assert manifest["snapshot_id"] == winner["snapshot_id"]
    assert vault.verify().ok and tmp_leftovers(vault) == []
    assert len(vault.events(action="dataset.version.create")) == 1


def test_two_writers_of_identical_content_race_on_postgresql(pg_url, tmp_path):
    """Made deterministic: the test holds a lock on `snapshots` until both writers wait on it."""
    import sqlalchemy as sa

    vault = lensvault.init(tmp_path / "vault", catalog=pg_url)
    src = write_files(tmp_path / "src", {"a.txt": "same content for both"})
    engine = sa.create_engine(vault.catalog.url)
    try:
        with engine.connect() as conn:
            tx = conn.begin()
            conn.exec_driver_sql("LOCK TABLE snapshots IN EXCLUSIVE MODE")
            procs = [lv_popen("--vault", vault.root, "dataset", "snapshot", "ds", src, "--version", "1.0.0")
                     for _ in range(2)]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                waiting = conn.exec_driver_sql(
                    "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                    "WHERE c.relname = 'snapshots' AND NOT l.granted").scalar()
                if waiting >= 2 or any(p.poll() is not None for p in procs):
                    break
                time.sleep(0.05)
            tx.commit()
        results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    finally:
        engine.dispose()
    try:
        assert sorted(rc for rc, _, _ in results) == [0, 4], results
        assert version_refs(vault) == ["ds@1.0.0"] and vault.verify().ok
    finally:
        vault.close()
