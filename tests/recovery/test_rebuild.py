"""`lensvault catalog rebuild`: a lost or damaged catalog comes back from the store, listing for listing.

Every listing command's --json output (datasets, versions, configs, runs, run details,
comparisons, models, model history, lineage, why, events) is compared before the damage
and after the rebuild, on SQLite and PostgreSQL, for every way of losing a catalog.
"""

from __future__ import annotations

import json

from .compare import assert_same, without_rebuild_events
from .conftest import by_backend
from .damage import PG_DAMAGE, SQLITE_DAMAGE, damage, pg_tables


@by_backend("how", {"sqlite": SQLITE_DAMAGE, "postgresql": PG_DAMAGE})
def test_every_listing_is_the_same_after_damage_and_rebuild(project, how, pg_exec):
    listings_before = project.listings()
    manifests, journal = project.manifests(), project.journal()
    state = damage(project, how, pg_exec)

    # Every command reads the damage as what it is (never as an empty vault), in the real CLI.
    r = project.lv("dataset", "log", "shapes")
    assert r.returncode == 10 and "Traceback" not in r.stderr, r.stderr
    assert "catalog rebuild" in r.stderr and ("--force" in r.stderr) == (state == "damaged"), r.stderr

    if how == "database_dropped":
        pg_exec(f"CREATE DATABASE {project.catalog_url.rsplit('/', 1)[1]}")  # what the error's fix says first
    if state == "damaged":
        r = project.lv("catalog", "rebuild")
        assert r.returncode == 4 and "--force" in r.stderr, r.stdout + r.stderr  # never replaced silently
    r = project.lv("catalog", "rebuild", "--json", *(["--force"] if state == "damaged" else []))
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert report["previous"] in (("missing", "empty") if state == "missing" else ("damaged",))
    assert report["unproven"] == []
    assert report["restored"]["dataset_versions"] == 4 and report["restored"]["runs"] == 4
    assert report["restored"]["model_versions"] == 2 and report["restored"]["alias_moves"] == 4
    assert report["restored"]["evaluations"] == 4 and report["restored"]["configs"] == 2
    assert report["restored"]["tokens"] == 2 and report["restored"]["token_revocations"] == 1
    if state == "damaged":
        assert report["kept_previous"]  # the damaged catalog is kept, not destroyed

    after = project.listings()
    rebuilt = [e for e in after["events"] if e["action"] == "catalog.rebuild"]
    assert len(rebuilt) == 1 and rebuilt[0]["after"]["previous"] == report["previous"]
    assert_same(without_rebuild_events(after), listings_before)
    # The tokens made before the loss open the server again (their hashes came back), and the
    # revoked one stays revoked.
    with project.open() as vault:
        assert vault.authenticate(project.secrets["live"]).user == "ci@example.com"
        assert vault.authenticate(project.secrets["revoked"]) is None
    # The store and the repository are untouched by the rebuild (the rebuild itself is recorded).
    assert project.manifests() == manifests
    assert set(journal) <= set(project.journal()) and len(project.journal()) == len(journal) + 1
    assert project.lv("verify").returncode == 0


def test_rebuild_is_idempotent_and_refuses_a_whole_catalog_without_force(project):
    listings_before = project.listings()
    r = project.lv("catalog", "rebuild")
    assert r.returncode == 4 and "not empty" in r.stderr and "--force" in r.stderr, r.stderr
    for _ in range(2):
        r = project.lv("catalog", "rebuild", "--force")
        assert r.returncode == 0, r.stderr
        assert "4  dataset versions" in r.stdout and "kept at" in r.stdout
    after = project.listings()
    assert [e["action"] for e in after["events"]][-2:] == ["catalog.rebuild", "catalog.rebuild"]
    assert_same(without_rebuild_events(after), listings_before)
    if project.catalog_url is not None:
        # The replaced tables are kept in a schema of their own, not dropped.
        assert "dataset_versions" in pg_tables(project.catalog_url)


def test_rebuild_says_what_it_could_not_prove(project, tmp_path):
    """A corrupt record, a lost record, an edited manifest and a stray one: reported, not restored."""
    import tomllib

    from lensvault.ledger import entries, ledger_prefix

    cid = tomllib.loads((project.root / ".lensvault" / "config.toml").read_text())["catalog"]["id"]
    store = project.root / ".lensvault" / "objects"
    with project.open() as vault:
        ents = entries(vault.store, cid)
    config_entry = next(e for e in ents if e.kind == "config")
    alias_entry = [e for e in ents if e.kind == "alias.move"][-1]  # promote 1.1.0 to staging
    (store / alias_entry.oid[:2] / alias_entry.oid[2:]).chmod(0o644)
    (store / alias_entry.oid[:2] / alias_entry.oid[2:]).write_bytes(b"{}")  # corrupt
    (store / config_entry.oid[:2] / config_entry.oid[2:]).unlink()  # lost
    edited = project.root / "data" / "manifests" / "plain" / "1.0.0.json"
    edited.chmod(0o644)
    edited.write_text(edited.read_text().replace("file", "FILE", 1) + " ")
    stray = project.root / "data" / "manifests" / "other" / "1.0.0.json"
    stray.parent.mkdir()
    stray.write_text('{"format": "lensvault.manifest/1"}')

    r = project.lv("catalog", "rebuild", "--force", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    where = {u["where"]: u for u in report["unproven"]}
    assert config_entry.name.startswith(f"{ledger_prefix(cid)}/journal/")
    assert "missing" in where[config_entry.name]["problem"]
    assert "corrupt" in where[alias_entry.name]["problem"]
    assert "not a manifest object in the store" in where["data/manifests/other/1.0.0.json"]["problem"]
    assert "not a manifest object in the store" in where["data/manifests/plain/1.0.0.json"]["problem"]
    # plain@1.0.0 is still proven by its ledger record; the config C-01 only by the lost record.
    assert sorted(v["version"] for v in project.cli_json("dataset", "log", "plain")) == ["1.0.0", "1.1.0"]
    assert [c["config_id"] for c in project.cli_json("config", "list")] == ["C-02"]
    history = project.cli_json("model", "history", "detector")
    assert [m["action"] for m in history] == ["promote", "promote", "rollback"]
    # The human report names them too.
    r = project.lv("catalog", "rebuild", "--force")
    assert "Could not prove 4 item(s)" in r.stderr and "data/manifests/other/1.0.0.json" in r.stderr
