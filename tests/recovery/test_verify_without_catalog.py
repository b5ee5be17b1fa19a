"""`verify` checks the store even when the catalog is lost or damaged (and with --no-catalog):
every object is re-hashed, and what the ledger and the stored manifests need is attributed to
the versions, runs and models that need it. It says what only the catalog could have told."""

from __future__ import annotations

import json
import os

from .conftest import by_backend
from .damage import damage


def _flip(path) -> None:
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    path.write_bytes(bytes(data))


def _object_path(project, oid):
    return project.root / ".lensvault" / "objects" / oid[:2] / oid[2:]


def test_a_healthy_store_verifies_without_the_catalog(project):
    r = project.lv("verify", "--no-catalog")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "without the catalog" in r.stdout and "OK:" in r.stdout
    out = json.loads(project.lv("verify", "--no-catalog", "--json").stdout)
    assert out["ok"] and out["catalog"]["used"] is False and out["catalog"]["skipped"]
    # With the catalog, nothing is skipped and the counts agree.
    full = json.loads(project.lv("verify", "--json").stdout)
    assert full["ok"] and full["catalog"]["used"] and full["checked"] == out["checked"]


@by_backend("how", {"sqlite": ["deleted", "garbage"], "postgresql": ["database_dropped"]})
def test_verify_finds_damage_in_the_store_when_the_catalog_is_gone(project, how, pg_exec):
    with project.open() as vault:
        ds = vault.dataset("plain@1.0.0")
        file_oid = ds.files()["sha256"][0].as_py()
        bundle = vault.model("detector@1.0.0").bundle_oid
        artifact = vault.get_run(project.ids["run1"])["artifacts"][0]["sha256"]
    _flip(_object_path(project, file_oid))
    _object_path(project, bundle).unlink()
    _object_path(project, artifact).unlink()
    damage(project, how, pg_exec)

    r = project.lv("verify", "--json")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    out = json.loads(r.stdout)
    assert "catalog rebuild" in out["catalog"]["problem"] and out["catalog"]["skipped"]
    corrupt = {c["oid"]: c for c in out["corrupt"]}
    missing = {m["oid"]: m for m in out["missing"]}
    assert "plain@1.0.0" in corrupt[file_oid]["needed_by"]
    assert "detector@1.0.0" in missing[bundle]["needed_by"]  # from the model's ledger record
    assert project.ids["run1"] in missing[artifact]["needed_by"]  # from the run's artifacts record
    r = project.lv("verify")
    assert r.returncode == 1 and r.stdout.startswith("CATALOG") and f"CORRUPT  {file_oid}" in r.stdout


def test_a_lost_ledger_record_is_reported(project):
    from lensvault.ledger import entries

    with project.open() as vault:
        e = next(x for x in entries(vault.store, vault.config.catalog_id) if x.kind == "run.finish")
    _object_path(project, e.oid).unlink()
    for args in (("verify", "--json"), ("verify", "--no-catalog", "--json")):
        out = json.loads(project.lv(*args).stdout)
        assert [m["oid"] for m in out["missing"]] == [e.oid]
        assert out["missing"][0]["needed_by"] == ["ledger:run.finish"]
