"""A disk filling up under the catalog: a clear error, and no half-visible version.

SQLite: the catalog file lives on a small tmpfs (the store does not); the disk is filled while
another process keeps the catalog open (so its -wal/-shm exist and opening needs no space), and the
write fails at its commit. PostgreSQL: the catalog database lives in a tablespace on a small tmpfs;
a version whose notes need new pages fails at its INSERT ("could not extend file"). Either way the
command says the disk is full and that nothing was recorded, and afterwards no trace of the version
is visible anywhere: not in the catalog, not as a manifest file, not in the store's ledger.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import lensvault
from lensvault.errors import StorageError

LV = [sys.executable, "-m", "lensvault.cli.main"]


@pytest.fixture
def tmpfs(tmp_path):
    mounts = []

    def make(size: str, owner: int | None = None) -> Path:
        if owner is None:
            d = tmp_path / f"tmpfs-{uuid.uuid4().hex[:6]}"
            d.mkdir()
        else:  # another user (the PostgreSQL server) must reach it: not under pytest's private tmp
            import tempfile

            d = Path(tempfile.mkdtemp(prefix="lv-tmpfs-"))
            d.chmod(0o755)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(d)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here ({r.stderr.strip() or r.returncode})")
        mounts.append(d)
        if owner is not None:
            os.chown(d, owner, -1)
        return d

    yield make
    for d in mounts:
        subprocess.run(["umount", "-l", str(d)], capture_output=True)
        if not str(d).startswith(str(tmp_path)):
            d.rmdir()


def _fill(folder: Path) -> Path:
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass
        try:
            while True:
                f.write(b"\0" * 512)
        except OSError:
            pass
    return filler


def _traces(vault, name: str, version: str) -> dict:
    """Everything that would make NAME@VERSION visible, anywhere."""
    from lensvault.ledger import entries, ref_target

    cid = vault.config.catalog_id
    return {
        "catalog": [v.version for v in vault.versions(name)] if vault.datasets() else [],
        "manifest": (vault.manifests_dir / name / f"{version}.json").exists(),
        "journal": len(entries(vault.store, cid)),
        "ref": ref_target(vault.store, cid, f"datasets/{name}/{version}"),
    }


def test_a_full_disk_at_the_sqlite_catalog_commit(tmp_path, tmpfs):
    disk = tmpfs("2m")
    root = tmp_path / "v"
    vault = lensvault.init(root, catalog=f"sqlite:///{disk / 'catalog.db'}")
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    vault.snapshot("ds", src, version="1.0.0")
    (src / "b.txt").write_text("b")
    before = _traces(vault, "ds", "1.1.0")
    filler = _fill(disk)  # our vault keeps the catalog open: its -wal and -shm stay
    try:
        # The CLI: exit 9, what/where/fix, no traceback.
        r = subprocess.run([*LV, "--vault", str(root), "dataset", "snapshot", "ds", str(src), "--version", "1.1.0"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 9, r.stderr
        assert "the disk holding the catalog is full" in r.stderr and "nothing was recorded" in r.stderr
        assert str(disk / "catalog.db") in r.stderr and "Traceback" not in r.stderr
        # The library says the same.
        with pytest.raises(StorageError) as ei:
            vault.snapshot("ds", src, version="1.1.0")
        assert "catalog is full" in ei.value.what
    finally:
        filler.unlink()
    assert _traces(vault, "ds", "1.1.0") == before  # nothing half-visible
    assert vault.verify().ok
    v = vault.snapshot("ds", src, version="1.1.0")  # and the retry just works
    assert v.record.files == 2
    vault.close()


def _pg_owner(admin_url: str) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(admin_url)
    try:
        with engine.connect() as c:
            data_dir = c.exec_driver_sql("SHOW data_directory").scalar()
    finally:
        engine.dispose()
    return os.stat(data_dir).st_uid


def test_a_full_disk_under_the_postgresql_catalog(tmp_path, tmpfs):
    import sqlalchemy as sa

    admin = os.environ.get("LENSVAULT_TEST_PG_URL")
    if not admin:
        pytest.skip("no PostgreSQL server (run through `make test` to get one)")
    disk = tmpfs("8m", owner=_pg_owner(admin))
    name, space = f"lv_full_{uuid.uuid4().hex[:8]}", f"lv_space_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.exec_driver_sql(f"CREATE TABLESPACE {space} LOCATION '{disk}'")
        c.exec_driver_sql(f"CREATE DATABASE {name} TABLESPACE {space}")
    url = admin.rsplit("/", 1)[0] + "/" + name
    try:
        vault = lensvault.init(tmp_path / "v", catalog=url)
        src = tmp_path / "src"
        src.mkdir()
        (src / "a.txt").write_text("a")
        vault.snapshot("ds", src, version="1.0.0")
        before = _traces(vault, "ds", "2.0.0")
        filler = _fill(disk)
        try:
            # Incompressible notes need new (TOAST) pages: the INSERT cannot extend its file.
            notes = os.urandom(300_000).hex()
            with pytest.raises(StorageError) as ei:
                vault.snapshot("ds", src, version="2.0.0", notes=notes, force=True)
            assert "catalog is full" in ei.value.what and "nothing was recorded" in ei.value.fix
        finally:
            filler.unlink()
        assert _traces(vault, "ds", "2.0.0") == before
        assert vault.verify().ok
        assert vault.snapshot("ds", src, version="2.0.0", notes=notes, force=True).record.notes == notes
        vault.close()
    finally:
        with engine.connect() as c:
            c.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            c.exec_driver_sql(f"DROP TABLESPACE IF EXISTS {space}")
        engine.dispose()
