"""Integrity: verify names every corrupt and missing object; gc plans, then deletes only the unreachable.

The API tests run on both object stores (``store_vault``: the local folder and the in-memory
store); the CLI runs in a subprocess, so its tests use a local store."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from _lvtest import damage_object, ledger_oids, lose_object, lv, oids_in_store, write_files

import lensvault
from lensvault.errors import LensVaultError


def _two_versions(vault, tmp_path):
    src = write_files(tmp_path / "src", {"a.txt": "alpha", "b.txt": "beta", "c/d.txt": "delta"})
    v1 = vault.snapshot("ds", src, version="1.0.0")
    (src / "e.txt").write_text("epsilon")
    v2 = vault.snapshot("ds", src, version="1.1.0")
    return vault, v1, v2


@pytest.fixture
def two_versions(store_vault, tmp_path):
    return _two_versions(store_vault, tmp_path)


@pytest.fixture
def two_local_versions(sqlite_vault, tmp_path):
    return _two_versions(sqlite_vault, tmp_path)


def _oid_of(ds, path):
    return dict(zip(ds.files()["path"].to_pylist(), ds.files()["sha256"].to_pylist()))[path]


def test_a_healthy_vault_verifies(two_versions):
    vault, _v1, _v2 = two_versions
    report = vault.verify()
    assert report.ok and report.checked == len(oids_in_store(vault))
    assert vault.verify("ds@1.0.0").ok


def _corrupt_and_lose(vault, v1, v2) -> tuple[set, set]:
    corrupt = {_oid_of(v1, "a.txt"), v2.record.manifest_oid}
    for oid in corrupt:
        damage_object(vault, oid)
    missing = {_oid_of(v1, "c/d.txt"), v1.snapshot_id}
    for oid in missing:
        lose_object(vault, oid)
    return corrupt, missing


def test_verify_names_every_corrupt_and_missing_object(two_versions):
    vault, v1, v2 = two_versions
    corrupt, missing = _corrupt_and_lose(vault, v1, v2)
    report = vault.verify()
    assert not report.ok
    assert {c["oid"] for c in report.corrupt} == corrupt
    assert {m["oid"] for m in report.missing} == missing
    by_oid = {m["oid"]: m for m in report.missing}
    assert "ds@1.0.0" in by_oid[_oid_of(v1, "c/d.txt")]["needed_by"]
    for c in report.corrupt:
        assert c["path"] == vault.store.local_path(c["oid"])  # the file, where the store keeps files


def test_the_verify_command_prints_every_corrupt_and_missing_object(two_local_versions):
    vault, v1, v2 = two_local_versions
    corrupt, missing = _corrupt_and_lose(vault, v1, v2)
    for c in vault.verify().corrupt:
        assert c["path"] == str(vault.store.oid_to_path(c["oid"]))
    # The CLI prints each one and exits non-zero.
    r = lv("--vault", vault.root, "verify")
    assert r.returncode != 0
    for oid in corrupt:
        assert f"CORRUPT  {oid}" in r.stdout
    for oid in missing:
        assert f"MISSING  {oid}" in r.stdout
    assert "FAILED" in r.stdout


def test_verify_reports_a_missing_files_table(two_versions):
    vault, v1, _v2 = two_versions
    files_oid = v1.manifest().tables["files"]["oid"]
    lose_object(vault, files_oid)
    report = vault.verify()
    assert [m["oid"] for m in report.missing] == [files_oid]


def test_verify_of_one_version_checks_only_what_it_needs(two_versions):
    vault, _v1, v2 = two_versions
    e_oid = _oid_of(v2, "e.txt")
    damage_object(vault, e_oid)
    assert vault.verify("ds@1.0.0").ok
    bad = vault.verify("ds@1.1.0")
    assert [c["oid"] for c in bad.corrupt] == [e_oid]


def test_a_modified_or_missing_manifest_file_is_reported_and_restorable(two_versions):
    vault, v1, v2 = two_versions
    path = vault.manifests_dir / "ds" / "1.0.0.json"
    os.chmod(path, 0o644)
    doc = json.loads(path.read_text())
    doc["notes"] = "rewritten history"
    path.write_text(json.dumps(doc))
    (vault.manifests_dir / "ds" / "1.1.0.json").unlink()
    report = vault.verify()
    assert not report.ok and not report.corrupt and not report.missing
    problems = {(p["ref"], p["problem"]) for p in report.manifest_files}
    assert problems == {("ds@1.0.0", "modified"), ("ds@1.1.0", "missing")}
    assert all("--restore-manifest" in p["fix"] for p in report.manifest_files)
    v1.restore_manifest()
    v2.restore_manifest()
    assert vault.verify().ok
    assert json.loads(path.read_text())["notes"] == ""


# -- gc -------------------------------------------------------------------------------------------


def test_gc_plans_and_deletes_only_what_nothing_needs(two_versions):
    vault, _v1, _v2 = two_versions
    needed = oids_in_store(vault)
    orphans = {vault.store.put_bytes(f"orphan {i}".encode()) for i in range(3)}
    assert vault.gc(grace_seconds=0, force=True).objects == []  # pinned by this live process
    vault.store.release_pins()  # as a write that failed and ended does: nothing relies on them any more
    assert vault.gc().objects == []  # fresh objects are protected by the grace period
    plan = vault.gc(grace_seconds=0, force=True)
    assert {o for o, _ in plan.objects} == orphans and plan.bytes == sum(len(f"orphan {i}") for i in range(3))
    assert oids_in_store(vault) == needed | orphans  # a plan deletes nothing
    assert plan.execute()["deleted"] == 3
    assert oids_in_store(vault) == needed | ledger_oids(vault)  # + the record of the gc itself
    assert vault.verify().ok


def test_gc_plans_and_deletes_only_with_yes_never_a_needed_object(two_local_versions):
    vault, _v1, _v2 = two_local_versions
    needed = oids_in_store(vault)
    orphans = {vault.store.put_bytes(f"orphan {i}".encode()) for i in range(3)}
    vault.store.release_pins()  # as a write that failed and ended does: nothing relies on them any more
    # Fresh objects are protected by the grace period (a snapshot may be in flight).
    assert vault.gc().objects == []
    r = lv("--vault", vault.root, "gc", "--grace", "0", "--force", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["plan"]["objects"] == 3 and out["executed"] is None
    assert out["plan"]["bytes"] == sum(len(f"orphan {i}") for i in range(3))
    assert oids_in_store(vault) == needed | orphans  # a plan deletes nothing
    r = lv("--vault", vault.root, "gc", "--grace", "0", "--force", "--yes")
    assert r.returncode == 0, r.stderr
    assert "Deleted 3 objects" in r.stdout
    assert oids_in_store(vault) == needed | ledger_oids(vault)  # + the record of the gc itself
    assert vault.verify().ok
    assert vault.events(action="gc")[-1]["after"]["deleted"] == 3
    # Nothing left to collect.
    assert vault.gc(grace_seconds=0, force=True).objects == []


def test_gc_execute_rechecks_reachability(two_versions, tmp_path):
    """An object that became needed after the plan was made is not deleted."""
    vault, _v1, _v2 = two_versions
    oid = vault.store.put_bytes(b"soon needed")
    vault.store.release_pins()
    plan = vault.gc(grace_seconds=0, force=True)
    assert [o for o, _ in plan.objects] == [oid]
    src = write_files(tmp_path / "later", {"x.txt": "soon needed"})
    vault.snapshot("later", src, version="1.0.0")
    assert plan.execute() == {"deleted": 0, "bytes": 0, "leftovers": 0, "leftover_bytes": 0, "cached_pictures": 0,
                              "cached_picture_bytes": 0}
    assert vault.store.has(oid) and vault.verify().ok


def test_gc_in_one_vault_keeps_the_objects_of_another_sharing_the_store(tmp_path, store_url):
    shared = store_url or str(tmp_path / "shared-objects")
    a = lensvault.init(tmp_path / "a", store=shared)
    b = lensvault.init(tmp_path / "b", store=shared)
    try:
        a.snapshot("ds", write_files(tmp_path / "sa", {"a.txt": "only in a"}), version="1.0.0")
        b_ds = b.snapshot("ds", write_files(tmp_path / "sb", {"b.txt": "only in b"}), version="1.0.0")
        b_needed = b_ds.object_ids()
        orphan = a.store.put_bytes(b"nobody's")
        a.store.release_pins()
        plan = a.gc(grace_seconds=0, force=True)
        assert [o for o, _ in plan.objects] == [orphan]
        assert sorted(plan.vaults) == sorted([str(a.root), str(b.root)])
        plan.execute()
        assert b_needed <= oids_in_store(b)
        assert a.verify().ok and b.verify().ok
        # When the other vault is gone for good, its objects are no longer protected, and gc says so.
        b.close()
        shutil.rmtree(tmp_path / "b")
        plan = a.gc(grace_seconds=0, force=True)
        assert {o for o, _ in plan.objects} == b_needed | ledger_oids(a, b.config.catalog_id)
        assert any(str(tmp_path / "b") in n for n in plan.notes)
    finally:
        a.close()
        b.close()


def test_gc_refuses_cleanly_when_a_needed_table_is_damaged(two_versions):
    vault, v1, _v2 = two_versions
    files_oid = v1.manifest().tables["files"]["oid"]
    damage_object(vault, files_oid, offset=4)
    before = oids_in_store(vault)
    with pytest.raises(LensVaultError):
        vault.gc(grace_seconds=0, force=True)
    assert oids_in_store(vault) == before


def test_gc_refuses_when_a_vault_sharing_the_store_cannot_be_read(tmp_path):
    from lensvault.errors import CatalogError

    shared = tmp_path / "shared-objects"
    a = lensvault.init(tmp_path / "a", store=str(shared))
    b = lensvault.init(tmp_path / "b", store=str(shared))
    b.close()
    try:
        a.store.put_bytes(b"orphan")
        cfg = tmp_path / "b" / ".lensvault" / "config.toml"
        cfg.write_text("this is [ not toml")
        before = oids_in_store(a)
        with pytest.raises(CatalogError) as ei:
            a.gc(grace_seconds=0, force=True)
        assert ei.value.where == str(tmp_path / "b") and "vaults/" in ei.value.fix
        assert oids_in_store(a) == before
    finally:
        a.close()


def test_gc_between_ingest_and_commit_does_not_delete_deduped_objects(store_vault, tmp_path):
    """The real steps of a snapshot, with a gc run in between (what a second process can do).

    A 1 s grace period with a 1.5 s old orphan stands in for the default hour: the
    grace period is measured from when an object was first written, not last used.
    """
    import time

    from lensvault.datasets.ingest import ingest_folder
    from lensvault.datasets.snapshot import commit_version

    vault = store_vault
    old = vault.store.put_bytes(b"left over from a deleted experiment")
    vault.store.release_pins()
    time.sleep(1.5)
    src = write_files(tmp_path / "src", {"a.txt": "left over from a deleted experiment", "b.txt": "brand new"})
    table = ingest_folder(vault, src)  # dedupes a.txt against `old`, writes b.txt
    vault.gc(grace_seconds=1.0, force=True).execute()  # another process collects garbage meanwhile
    commit_version(vault, name="ds", version="1.0.0", files=table)
    assert vault.store.has(old)
    assert vault.verify().ok
