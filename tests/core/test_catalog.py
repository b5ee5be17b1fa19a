"""The catalog: recorded, idempotent migrations; write-once enforced by the database itself."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from _lvtest import version_refs, write_files

import lensvault
from lensvault.catalog import schema
from lensvault.catalog.migrations import STEPS
from lensvault.errors import AlreadyExists


def test_migrations_are_recorded_and_idempotent(vault):
    _migration_steps_rerun_are_harmless(vault)
    with vault.catalog.read() as conn:
        rows = conn.execute(sa.select(schema.schema_migrations)).all()
    assert [r.name for r in rows] == STEPS
    assert all(r.applied_at.endswith("Z") for r in rows)
    assert vault.catalog.migrate() == []  # nothing left to apply
    # Re-opening the vault (which migrates) changes nothing either.
    again = lensvault.open(vault.root)
    try:
        assert again.catalog.migrate() == []
        with again.catalog.read() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(schema.schema_migrations)).scalar() == len(STEPS)
    finally:
        again.close()


def _migration_steps_rerun_are_harmless(vault):
    """A step must tolerate tables it already created (a crash between DDL and the record)."""
    from lensvault.catalog.migrations import load_steps

    with vault.catalog.begin() as conn:
        for _name, upgrade in load_steps():
            upgrade(conn)
    _write_once_holds(vault, "dataset_versions", seed=True)


def _seed_version(vault, tmp_path):
    src = write_files(tmp_path / "src", {"a.txt": "a"})
    vault.snapshot("ds", src, version="1.0.0")


def _write_once_holds(vault, table: str, seed: bool = False):
    if seed:
        src_root = vault.root.parent / "seed-src"
        write_files(src_root, {"s.txt": "s"})
        vault.snapshot("seed", src_root, version="1.0.0")
    for stmt in (f"UPDATE {table} SET created_at = 'x'" if table != "events" else f"UPDATE {table} SET at = 'x'",
                 f"DELETE FROM {table}"):
        with pytest.raises(sa.exc.DBAPIError) as ei, vault.catalog.engine.begin() as conn:
            conn.exec_driver_sql(stmt)
        assert "write-once" in str(ei.value.orig), ei.value.orig


def test_write_once_tables_refuse_update_and_delete_in_the_database(vault, tmp_path):
    _seed_version(vault, tmp_path)
    for table in ("dataset_versions", "events", "snapshots"):
        with vault.catalog.read() as conn:
            before = conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar()
        assert before >= 1
        _write_once_holds(vault, table)
        with vault.catalog.read() as conn:
            assert conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar() == before
    assert version_refs(vault) == ["ds@1.0.0"]


def test_a_taken_version_is_refused_naming_what_it_points_to(vault, tmp_path):
    src = write_files(tmp_path / "src", {"a.txt": "a", "b.txt": "bb"})
    first = vault.snapshot("ds", src, version="1.0.0")
    (src / "c.txt").write_text("different content")
    with pytest.raises(AlreadyExists) as ei:
        vault.snapshot("ds", src, version="1.0.0")
    e = ei.value
    assert "ds@1.0.0" in e.what and first.snapshot_id[:12] in e.what and "2 files" in e.what
    assert e.where == "ds@1.0.0" and "new version" in e.fix
    assert e.details["existing"]["snapshot_id"] == first.snapshot_id
    assert e.exit_code == 4
    assert vault.dataset("ds@1.0.0").snapshot_id == first.snapshot_id
    # "v1.0.0" is the same version.
    with pytest.raises(AlreadyExists):
        vault.snapshot("ds", src, version="v1.0.0")


def test_the_unique_constraint_decides_even_past_the_python_check(vault, tmp_path):
    """commit_version straight to the catalog (no pre-check): the database refuses the duplicate."""
    from lensvault.datasets import files_table
    from lensvault.datasets.snapshot import commit_version

    src = write_files(tmp_path / "src", {"a.txt": "a"})
    vault.snapshot("ds", src, version="1.0.0")
    # (Its content is in the store: a version naming a missing object is refused before the catalog.)
    table = files_table.build(["z.txt"], [1], [vault.store.put_bytes(b"z")], ["text/plain"], [None], [None])
    events_before = len(vault.events())
    with pytest.raises(AlreadyExists):
        commit_version(vault, name="ds", version="1.0.0", files=table)
    assert len(vault.events()) == events_before
    assert vault.dataset("ds@1.0.0").record.files == 1
    assert vault.verify().ok


def test_every_write_leaves_one_event(sqlite_vault, tmp_path):
    vault = sqlite_vault
    src = write_files(tmp_path / "src", {"a.txt": "a"})
    vault.snapshot("ds", src, version="1.0.0", notes="first")
    evs = vault.events()
    assert [e["action"] for e in evs] == ["vault.init", "dataset.version.create"]
    created = evs[-1]
    assert created["subject"] == "ds@1.0.0"
    assert created["after"]["snapshot_id"] == vault.dataset("ds@1.0.0").snapshot_id
    assert created["actor"]
    assert vault.events(subject="ds") == [created]
    assert vault.events(action="dataset.*") == [created]


def test_unreachable_catalog_is_a_catalog_error(tmp_path):
    from lensvault.errors import CatalogError

    with pytest.raises((CatalogError, lensvault.UsageError)):
        lensvault.init(tmp_path / "v", catalog="postgresql://nobody@127.0.0.1:1/none")
    assert not (tmp_path / "v" / ".lensvault" / "config.toml").exists()


def test_an_unreadable_vault_config_is_a_catalog_error_with_a_fix(tmp_path):
    from lensvault.errors import CatalogError

    v = lensvault.init(tmp_path / "v")
    v.close()
    cfg = tmp_path / "v" / ".lensvault" / "config.toml"
    cfg.write_text('[vault]\nid = "x"\n')  # keys missing
    with pytest.raises(CatalogError) as ei:
        lensvault.open(tmp_path / "v")
    assert ei.value.where == str(cfg) and "store.url" in ei.value.fix


def _driver_error(vault, kind: str, message: str) -> Exception:
    """An error of the driver's own class (sqlite3 / psycopg), as a raw DB-API call raises it."""
    dbapi = vault.catalog.engine.dialect.loaded_dbapi
    return getattr(dbapi, kind)(message)


@pytest.mark.parametrize("where", ["write", "read"])
def test_a_database_error_raised_by_the_driver_itself_is_translated_like_one_through_sqlalchemy(vault, where):
    # Bulk metric points go through the driver's executemany: a full disk there must be the
    # same clear error as anywhere else, not a traceback.
    from lensvault.errors import CatalogError, StorageError

    opened = vault.catalog.begin if where == "write" else vault.catalog.read
    with pytest.raises(StorageError, match="disk holding the catalog is full"), opened():
        raise _driver_error(vault, "OperationalError", "database or disk is full")
    with pytest.raises(CatalogError, match="could not be"), opened():
        raise _driver_error(vault, "OperationalError", "something else went wrong")
    # A constraint violation stays the caller's to handle, as do errors that are not the database's.
    with pytest.raises(_driver_error(vault, "IntegrityError", "x").__class__), opened():
        raise _driver_error(vault, "IntegrityError", "UNIQUE constraint failed")
    with pytest.raises(ValueError, match="not the database"), opened():
        raise ValueError("not the database")
