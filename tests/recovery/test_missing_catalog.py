"""A missing or damaged catalog is never mistaken for an empty one — by any command.

Today's failure this guards against: with `catalog.db` deleted, a snapshot rewrote a frozen,
git-committed manifest with other content and `gc --yes` deleted every other version's
objects, all with exit 0. Now every command that needs the catalog stops with what, where
and the fix, and nothing is written: no new catalog, no ledger entry, no manifest change,
no object deleted. Commands that read the manifests only (checkout, status) still work.
"""

from __future__ import annotations

from .conftest import by_backend
from .damage import damage, pg_tables

# Every command that writes or deletes, and a few that only read the catalog.
COMMANDS = [
    ("dataset", "snapshot", "plain", "plain-src", "--version", "1.0.0"),  # the overwrite
    ("dataset", "snapshot", "plain", "plain-src", "--version", "2.0.0"),
    ("dataset", "snapshot", "shapes", "raw", "--format", "coco", "--version", "2.0.0"),
    ("dataset", "fix", "shapes@1.0.0", "--annotations", "labels-fixed/instances.json", "--version", "1.0.2"),
    ("config", "add", "configs/base.yaml", "--id", "C-09"),
    ("preflight", "--dataset", "shapes@1.0.1", "--config", "C-01"),
    ("run", "--dataset", "shapes@1.0.1", "--config", "C-01", "--", "python", "train.py"),
    ("eval", "--run", "{run1}", "--dataset", "shapes@1.0.0", "--split", "test", "--predictions",
     "preds/shapes@1.0.0.json"),
    ("model", "register", "detector", "--run", "{run2}", "--weights", "runs/{run2}/model.npz", "--version", "3.0.0"),
    ("model", "promote", "detector@1.0.0", "canary"),
    ("model", "rollback", "detector", "staging"),
    ("gc", "--yes", "--grace", "0", "--force"),
    ("dataset", "list"), ("dataset", "log", "shapes"), ("runs", "list"), ("model", "list"), ("events",),
    ("lineage", "detector@production"), ("why", "detector@1.0.0", "detector@1.1.0"),
    ("reproduce", "detector@1.0.0"),
]


def _state(project) -> dict:
    """Everything a wrongly "fresh" catalog used to change."""
    objects = project.root / ".lensvault" / "objects"
    return {
        "journal": project.journal(),
        "manifests": project.manifests(),
        "objects": sorted(p.parent.name + p.name for p in objects.glob("??/*")),
        "runs": sorted(p.name for p in (project.root / "runs").iterdir()),
        "catalog": (project.catalog_file.exists() if project.catalog_url is None
                    else sorted(_tables_or_none(project.catalog_url))),
    }


def _tables_or_none(url):
    try:
        return pg_tables(url)
    except Exception:  # noqa: BLE001 - the database itself is gone
        return {"<no database>"}


@by_backend("how", {"sqlite": ["deleted", "garbage"], "postgresql": ["schema_emptied", "database_dropped"]})
def test_every_command_stops_with_the_fix_and_writes_nothing(project, how, pg_exec):
    state = damage(project, how, pg_exec)
    before = _state(project)
    for cmd in COMMANDS:
        args = [a.format(**project.ids) for a in cmd]
        r = project.lv(*args)
        out = r.stdout + r.stderr
        assert r.returncode not in (0, 1) and "Traceback" not in out, (args, out)
        assert "catalog" in out and "lensvault catalog rebuild" in out, (args, out)
        if state == "damaged":
            assert "--force" in out, (args, out)
        assert _state(project) == before, args  # nothing written, nothing deleted, no catalog created
    # The catalog is what these commands exit with (10); preflight and run list it as a failed check (7).
    assert project.lv("dataset", "log", "shapes").returncode == 10
    assert project.lv("runs", "list", "--json").returncode == 10


@by_backend("how", {"sqlite": ["deleted"], "postgresql": ["database_dropped"]})
def test_reading_a_version_from_its_manifest_needs_no_catalog(project, how, pg_exec, tmp_path):
    damage(project, how, pg_exec)
    r = project.lv("dataset", "checkout", "plain@1.1.0", tmp_path / "co")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "co").iterdir() if not p.name.startswith(".")) == [f"f{i}.txt" for i in range(6)]
    r = project.lv("status", "plain@1.1.0", tmp_path / "co")
    assert r.returncode == 0 and "matches plain@1.1.0" in r.stdout, r.stderr


def test_a_catalog_of_another_vault_is_refused(project, tmp_path):
    """Pointing a vault at another vault's catalog (a wrong URL, a copied file) is not "its" catalog."""
    import lensvault

    other = lensvault.init(tmp_path / "other")
    other.close()
    cfg = project.root / ".lensvault" / "config.toml"
    text = cfg.read_text()
    url = f"sqlite:///{tmp_path / 'other' / '.lensvault' / 'catalog.db'}"
    old_url = text.split('url = "', 2)[2].split('"', 1)[0]
    cfg.write_text(text.replace(old_url, url))
    r = project.lv("dataset", "log", "shapes")
    assert r.returncode == 10 and "not this vault's catalog" in r.stderr and "Traceback" not in r.stderr
    r = project.lv("gc", "--yes", "--grace", "0", "--force")
    assert r.returncode == 10
    r = project.lv("catalog", "rebuild")
    assert r.returncode == 4 and "--force" in r.stderr
