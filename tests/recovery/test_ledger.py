"""The ledger: every catalog write is also an immutable record in the store.

What `catalog rebuild` and a future remote rely on: every event the catalog holds is in exactly
one record; records are canonical JSON objects listed by a write-once journal; write-once refs name
each dataset version, model version and config; alias refs follow the latest move.
"""

from __future__ import annotations

import json

import pytest

import lensvault
from lensvault.errors import UsageError
from lensvault.ledger import FORMAT, entries, ledger_prefix, read_record, ref_target


def test_every_event_in_the_catalog_is_in_exactly_one_ledger_record(project):
    with project.open() as vault:
        events = vault.events()
        cid = vault.config.catalog_id
        ents = entries(vault.store, cid)
        records = [(e, read_record(vault.store, e.oid)) for e in ents]
    recorded = [ev for _, rec in records for ev in rec["events"]]
    assert sorted(ev["id"] for ev in recorded) == [e["id"] for e in events]
    by_id = {ev["id"]: ev for ev in recorded}
    for e in events:  # the very row, as the catalog holds it
        ev = by_id[e["id"]]
        assert (ev["at"], ev["actor"], ev["action"], ev["subject"]) == (e["at"], e["actor"], e["action"], e["subject"])
        assert (json.loads(ev["after"]) if ev["after"] else None) == e["after"]
    kinds = [e.kind for e in ents]
    assert kinds[0] == "events"  # vault.init
    for kind in ("dataset.version", "config", "run.start", "run.environment", "run.params", "run.metrics",
                 "run.artifacts", "run.finish", "evaluation", "model.version", "alias.move"):
        assert kind in kinds, kind
    assert kinds.count("dataset.version") == 4 and kinds.count("run.finish") == 4
    assert [e.stamp for e in ents] == sorted(e.stamp for e in ents)
    for e, rec in records:
        assert rec["format"] == FORMAT and rec["kind"] == e.kind and rec["catalog_id"] == cid


def test_refs_name_the_records_of_versions_configs_and_aliases(project):
    with project.open() as vault:
        cid = vault.config.catalog_id
        store = vault.store
        rec = read_record(store, ref_target(store, cid, "datasets/shapes/1.0.1"))
        assert rec["data"]["row"]["manifest_oid"] == vault.dataset("shapes@1.0.1").record.manifest_oid
        rec = read_record(store, ref_target(store, cid, "models/detector/1.1.0"))
        assert rec["data"]["row"]["bundle_oid"] == vault.model("detector@1.1.0").bundle_oid
        assert read_record(store, ref_target(store, cid, "configs/C-02"))["data"]["row"]["config_id"] == "C-02"
        # The alias ref follows the latest move: production was rolled back to 1.0.0.
        move = read_record(store, ref_target(store, cid, "aliases/detector/production"))["data"]["move"]
        assert (move["action"], move["to_version"]) == ("rollback", "1.0.0")
        assert vault.model("detector@production").version == "1.0.0"
        assert store.list_refs(f"{ledger_prefix(cid)}/refs/datasets") == [
            f"{ledger_prefix(cid)}/refs/datasets/{n}" for n in
            ("plain/1.0.0", "plain/1.1.0", "shapes/1.0.0", "shapes/1.0.1")]


def test_store_refs_are_created_once_moved_listed_and_confined(tmp_path):
    from lensvault.store import LocalObjectStore

    store = LocalObjectStore(tmp_path / "objects")
    store.create()
    assert store.put_ref("ledgers/x/refs/a/1", b"one", exclusive=True) is True
    assert store.put_ref("ledgers/x/refs/a/1", b"two", exclusive=True) is False
    assert store.get_ref("ledgers/x/refs/a/1") == b"one"
    assert store.put_ref("ledgers/x/refs/a/1", b"two") is True
    assert store.get_ref("ledgers/x/refs/a/1") == b"two"
    store.put_ref("ledgers/x/refs/b", b"")
    assert store.list_refs("ledgers/x") == ["ledgers/x/refs/a/1", "ledgers/x/refs/b"]
    store.delete_ref("ledgers/x/refs/b")
    assert store.get_ref("ledgers/x/refs/b") is None
    assert list(store.iter_oids()) == [] and list((tmp_path / "objects" / "tmp").iterdir()) == []
    for bad in ("../x", "ledgers/../../etc/passwd", "/abs", "ab/cdef", "tmp/x", "ledgers/a b"):
        with pytest.raises(UsageError):
            store.put_ref(bad, b"x")


def test_a_vault_made_before_catalog_ids_gets_one_on_open(tmp_path):
    """An older vault: no id in its config, no catalog_info table. Opening migrates and remembers."""
    import sqlite3
    import tomllib

    import tomli_w

    v = lensvault.init(tmp_path / "v")
    v.close()
    db = tmp_path / "v" / ".lensvault" / "catalog.db"
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("DROP TABLE catalog_info")
    con.execute("DELETE FROM schema_migrations WHERE name = 'm0007_catalog_info'")
    con.close()
    cfg = tmp_path / "v" / ".lensvault" / "config.toml"
    data = tomllib.loads(cfg.read_text())
    del data["catalog"]["id"]
    cfg.write_text(tomli_w.dumps(data))
    with lensvault.open(tmp_path / "v") as v:
        assert v.datasets() == []
        new_id = tomllib.loads(cfg.read_text())["catalog"]["id"]
        assert v.catalog.catalog_id == new_id
    with lensvault.open(tmp_path / "v") as v:  # stable from now on
        v.datasets()
        assert v.catalog.catalog_id == new_id
