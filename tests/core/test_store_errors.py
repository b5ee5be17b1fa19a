"""Damaged store parts and odd destinations: a located error with a fix, never a traceback."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from _lvtest import lv, settle, without_dac_override, write_files

from lensvault.errors import IntegrityError


@pytest.fixture
def ds(sqlite_vault, tmp_path):
    src = write_files(tmp_path / "src", {"a.txt": "alpha", "b/c.txt": "gamma"})
    settle()
    sqlite_vault.snapshot("ds", src, version="1.0.0")
    (src / "d.txt").write_text("delta")
    settle()
    sqlite_vault.snapshot("ds", src, version="1.1.0")
    return sqlite_vault


def _forget_caches(vault) -> None:
    """Without the stat cache's copy of the rows, commands read the Parquet tables themselves."""
    shutil.rmtree(vault.dir / "cache", ignore_errors=True)


def _truncate(path: Path, size: int = 20) -> None:
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.truncate(size)


@pytest.mark.parametrize("command", [["dataset", "diff", "ds@1.0.0", "ds@1.1.0"],
                                     ["dataset", "checkout", "ds@1.0.0", "{tmp}/co"],
                                     ["status", "ds@1.0.0", "{src}"]])
def test_a_truncated_files_table_is_a_located_error(ds, tmp_path, command):
    table = ds.dataset("ds@1.0.0").manifest().tables["files"]["oid"]
    _truncate(ds.store.oid_to_path(table))
    _forget_caches(ds)
    args = [a.format(tmp=tmp_path, src=tmp_path / "src") for a in command]
    r = lv("--vault", ds.root, *args)
    assert r.returncode == 5, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert table[:12] in r.stderr and str(ds.store.oid_to_path(table)) in r.stderr
    assert "verify --repair" in r.stderr
    assert not (tmp_path / "co").exists()
    # and the fix the message names works: the rows are rebuilt from... the table is gone with the
    # cache here, so verify says what it cannot restore
    r = lv("--vault", ds.root, "verify", "--repair")
    assert "Traceback" not in r.stderr and table in r.stdout


def test_a_damaged_manifest_object_is_a_located_error(ds):
    rec = ds.dataset("ds@1.0.0").record
    (ds.manifests_dir / "ds" / "1.0.0.json").unlink()  # so the store's copy is read
    p = ds.store.oid_to_path(rec.manifest_oid)
    os.chmod(p, 0o644)
    p.write_bytes(b"{ not json")
    with pytest.raises(IntegrityError) as ei:
        ds.dataset("ds@1.0.0").manifest()
    assert rec.manifest_oid[:12] in ei.value.what and "verify --repair" in ei.value.fix
    r = lv("--vault", ds.root, "dataset", "show", "ds@1.0.0")
    assert r.returncode == 5 and "Traceback" not in r.stderr


def test_gc_on_a_read_only_store_is_a_storage_error(ds, tmp_path):
    prefix = without_dac_override()
    orphan = ds.store.put_bytes(b"an orphan")
    ds.store.release_pins()
    root = Path(ds.store.root)
    os.chmod(root / orphan[:2], 0o555)
    try:
        r = lv("--vault", ds.root, "gc", "--grace", "0", "--force", "--yes", prefix=prefix)
    finally:
        os.chmod(root / orphan[:2], 0o755)
    assert r.returncode == 9, r.stdout + r.stderr
    assert "permission denied" in r.stderr and str(root / orphan[:2]) in r.stderr and "fix:" in r.stderr
    assert "Traceback" not in r.stderr
    assert ds.verify().ok


def test_checkout_into_a_symlink_is_refused_with_the_real_folder(ds, tmp_path):
    target = tmp_path / "real"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    r = lv("--vault", ds.root, "dataset", "checkout", "ds@1.0.0", link)
    assert r.returncode == 6 and "symbolic link" in r.stderr and str(target) in r.stderr
    assert "Traceback" not in r.stderr and os.listdir(target) == []
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".lensvault-checkout-")]


def test_checkout_under_a_file_is_a_storage_error(ds, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    r = lv("--vault", ds.root, "dataset", "checkout", "ds@1.0.0", blocker / "co")
    assert r.returncode == 9 and "Traceback" not in r.stderr and str(blocker) in r.stderr


def test_a_damaged_pin_file_does_not_stop_gc(ds):
    (Path(ds.store.root) / "pins" / "garbage.pin").write_bytes(os.urandom(200) + b"\n\xff\xfe")
    r = lv("--vault", ds.root, "gc", "--grace", "0", "--force", "--yes")
    assert r.returncode == 0 and "Traceback" not in r.stderr


def test_a_folder_where_an_object_should_be_is_corrupt_and_repairable(ds, tmp_path):
    oid = __import__("hashlib").sha256(b"alpha").hexdigest()
    p = ds.store.oid_to_path(oid)
    p.unlink()
    p.mkdir()
    report = ds.verify()
    assert [c["oid"] for c in report.corrupt] == [oid]
    assert ds.verify(repair=True).ok and ds.store.check(oid) == "ok"
