"""A catalog that lost versions (restored from an older copy, or rows removed behind its triggers'
back) cannot make LensVault overwrite a frozen manifest, record a second NAME@VERSION, or delete a
version's objects — the store's own proof (ledger records, stored manifests) decides. `verify`
names the versions the catalog lacks; `catalog rebuild --force` brings them back.
"""

from __future__ import annotations

import json
import shutil

import pytest
import sqlalchemy as sa

from lensvault.datasets.manifest import write_manifest_file
from lensvault.errors import AlreadyExists


def lose_rows(project, table: str, where: str) -> None:
    """Delete catalog rows the way only a tool outside LensVault can: write-once triggers off."""
    if project.catalog_url is None:
        import sqlite3

        con = sqlite3.connect(project.catalog_file, isolation_level=None)
        try:
            triggers = [r[0] for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (table,))]
            for t in triggers:
                con.execute(f"DROP TRIGGER {t}")
            con.execute(f"DELETE FROM {table} WHERE {where}")
        finally:
            con.close()
        return
    engine = sa.create_engine(project.catalog_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as c:
            c.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER ALL")
            c.exec_driver_sql(f"DELETE FROM {table} WHERE {where}")
            c.exec_driver_sql(f"ALTER TABLE {table} ENABLE TRIGGER ALL")
    finally:
        engine.dispose()


def _objects(project) -> set[str]:
    return {p.parent.name + p.name for p in (project.root / ".lensvault" / "objects").glob("??/*")}


def _needs(project, ref: str) -> set[str]:
    with project.open() as vault:
        return vault.dataset(ref).object_ids()


def test_a_frozen_manifest_is_never_overwritten_and_a_version_never_recorded_twice(project):
    lose_rows(project, "dataset_versions", "name = 'plain' AND version = '1.1.0'")
    manifest = project.root / "data" / "manifests" / "plain" / "1.1.0.json"
    frozen = manifest.read_bytes()
    (project.root / "plain-src" / "f0.txt").write_text("other content\n")
    journal = project.journal()

    # The catalog says plain@1.1.0 is free; the manifest file says otherwise, before any work.
    r = project.lv("dataset", "snapshot", "plain", "plain-src", "--version", "1.1.0")
    assert r.returncode == 4 and "Traceback" not in r.stderr, r.stderr
    assert "manifests are frozen" in r.stderr and "catalog rebuild" in r.stderr
    assert manifest.read_bytes() == frozen

    # Without the file (never committed, say), the store's write-once ref refuses it at commit.
    manifest.chmod(0o644)
    manifest.unlink()
    r = project.lv("dataset", "snapshot", "plain", "plain-src", "--version", "1.1.0")
    assert r.returncode == 4 and "already recorded in the store" in r.stderr, r.stderr
    assert "catalog rebuild --force" in r.stderr
    assert not manifest.exists() and project.journal() == journal  # the refused write left nothing
    write_manifest_file(manifest, frozen)

    # Model versions the same way.
    lose_rows(project, "model_versions", "version = '1.1.0'")
    lose_rows(project, "model_files", "version = '1.1.0'")
    lose_rows(project, "object_refs", "owner_id = 'detector@1.1.0'")
    r = project.lv("model", "register", "detector", "--run", project.ids["run2"], "--weights",
                   f"runs/{project.ids['run2']}/model.npz", "--version", "1.1.0", "--force")
    assert r.returncode == 4 and "already recorded in the store" in r.stderr, r.stderr

    # verify names what the catalog lacks; rebuild brings it back.
    r = project.lv("verify", "--json")
    assert r.returncode == 1
    problem = json.loads(r.stdout)["catalog"]["problem"]
    assert "plain@1.1.0" in problem and "detector@1.1.0" in problem and "rebuild --force" in problem
    assert project.lv("catalog", "rebuild", "--force").returncode == 0
    assert {v["version"] for v in project.cli_json("dataset", "log", "plain")} == {"1.0.0", "1.1.0"}
    assert {m["version"] for m in project.cli_json("model", "list")} == {"1.0.0", "1.1.0"}
    assert project.lv("verify").returncode == 0


@pytest.mark.parametrize("proof", ["ledger and manifest", "ledger only", "manifest file only",
                                   "an edited manifest file only"])
def test_gc_keeps_what_the_store_proves_whatever_the_catalog_says(project, proof, tmp_path):
    needed = _needs(project, "plain@1.1.0") | _needs(project, "shapes@1.0.1")
    with project.open() as vault:
        manifest_oids = {vault.dataset(r).record.manifest_oid for r in ("plain@1.1.0", "shapes@1.0.1")}
    lose_rows(project, "dataset_versions", "version IN ('1.1.0', '1.0.1')")
    manifest = project.root / "data" / "manifests" / "plain" / "1.1.0.json"
    if proof == "ledger only":
        for p in (manifest, project.root / "data" / "manifests" / "shapes" / "1.0.1.json"):
            p.chmod(0o644)
            p.unlink()
    if proof in ("manifest file only", "an edited manifest file only"):
        shutil.rmtree(project.root / ".lensvault" / "objects" / "ledgers")
    if proof == "an edited manifest file only":
        # Not a stored object any more (a changed note), but it still names the version's objects.
        for name in ("plain/1.1.0.json", "shapes/1.0.1.json"):
            p = project.root / "data" / "manifests" / name
            p.chmod(0o644)
            p.write_text(p.read_text().replace('"notes": "', '"notes": "edited: ', 1))
    r = project.lv("gc", "--yes", "--grace", "0", "--force", "--json")
    assert r.returncode == 0, r.stderr
    if proof == "an edited manifest file only":
        # The edited file still names the snapshot, its tables and every file; only the original
        # manifest objects (named by nothing left) go.
        needed -= manifest_oids
    assert needed <= _objects(project)
    if proof != "an edited manifest file only":
        # The store proves the versions: rebuild restores them, and they are whole.
        assert project.lv("catalog", "rebuild", "--force").returncode == 0
        if proof == "ledger only":  # the manifest files come back from the store
            for ref in ("plain@1.1.0", "shapes@1.0.1"):
                assert project.lv("dataset", "show", ref, "--restore-manifest").returncode == 0
        assert project.lv("verify").returncode == 0
        r = project.lv("dataset", "checkout", "plain@1.1.0", tmp_path / "co")
        assert r.returncode == 0, r.stderr


def test_a_manifest_left_by_a_failed_write_is_refused_before_any_work(project):
    stray = project.root / "data" / "manifests" / "plain" / "4.0.0.json"
    stray.write_text('{"format": "lensvault.manifest/1", "name": "plain", "version": "4.0.0"}')
    r = project.lv("dataset", "snapshot", "plain", "plain-src", "--version", "4.0.0")
    assert r.returncode == 4 and "manifests are frozen" in r.stderr
    assert "delete it" in r.stderr  # the fix for a file that was never committed
    assert stray.read_text().startswith('{"format"')


def test_write_manifest_file_creates_once_and_refuses_other_bytes(tmp_path):
    p = tmp_path / "m" / "ds" / "1.0.0.json"
    assert write_manifest_file(p, b"first") is True
    assert write_manifest_file(p, b"first") is False  # identical bytes: fine, nothing rewritten
    with pytest.raises(AlreadyExists) as ei:
        write_manifest_file(p, b"second")
    assert ei.value.where == str(p) and "frozen" in ei.value.what
    assert p.read_bytes() == b"first" and oct(p.stat().st_mode & 0o777) == "0o444"
    assert sorted(x.name for x in p.parent.iterdir()) == ["1.0.0.json"]  # no temp file left
    assert write_manifest_file(p, b"restored", replace=True) is True
    assert p.read_bytes() == b"restored"


def test_restoring_a_manifest_never_replaces_another_stored_manifest(project):
    """--restore-manifest repairs an edited file, but a file that is another stored manifest of the
    version (a conflict between two records) is for a person to settle."""
    plain_10 = project.root / "data" / "manifests" / "plain" / "1.0.0.json"
    plain_11 = project.root / "data" / "manifests" / "plain" / "1.1.0.json"
    plain_10.chmod(0o644)
    plain_10.write_bytes(plain_11.read_bytes())  # a stored manifest, but not plain@1.0.0's
    r = project.lv("dataset", "show", "plain@1.0.0", "--restore-manifest")
    assert r.returncode == 4 and "frozen" in r.stderr, r.stderr
    plain_10.write_text("edited by hand")
    r = project.lv("dataset", "show", "plain@1.0.0", "--restore-manifest")
    assert r.returncode == 0, r.stderr
    assert project.lv("verify").returncode == 0


@pytest.mark.parametrize("tamper", ["version row lost", "rows planted"])
def test_register_beside_stray_model_rows_is_a_located_error(project, tamper):
    """Rows of a model version whose version row is gone (deleted behind the triggers' back), or
    rows planted for a version never registered: register stops with the fix, writes nothing,
    and after `catalog rebuild --force` the catalog holds what the store proves."""
    run2 = project.ids["run2"]
    register = ("model", "register", "detector", "--run", run2, "--weights", f"runs/{run2}/model.npz", "--force")
    if tamper == "version row lost":
        version = "1.1.0"
        lose_rows(project, "model_versions", "version = '1.1.0'")  # model_files, object_refs stay
    else:
        version = "7.0.0"
        with project.open() as vault, vault.catalog.begin() as conn:
            from lensvault.catalog.registry_schema import model_files

            conn.execute(model_files.insert().values(name="detector", version=version, file="model.npz",
                                                     role="weights", sha256="0" * 64, size=1))
    journal = project.journal()
    r = project.lv(*register, "--version", version)
    assert r.returncode == 10 and "Traceback" not in r.stderr, r.stderr
    assert f"detector@{version}" in r.stderr and "catalog rebuild --force" in r.stderr, r.stderr
    assert project.journal() == journal  # nothing recorded
    assert project.lv("catalog", "rebuild", "--force").returncode == 0
    r = project.lv(*register, "--version", version)
    if tamper == "version row lost":  # the store proved it: it is back, whole, and stays write-once
        assert r.returncode == 4 and "already exists" in r.stderr, r.stderr
        assert project.cli_json("model", "show", "detector@1.1.0")["bundle_oid"]
    else:  # nothing proved the planted rows: gone, and the version is free
        assert r.returncode == 0, r.stderr
    assert project.lv("verify").returncode == 0
