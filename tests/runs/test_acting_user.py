"""The acting user is an input of the vault, not something the catalog looks up.

Two vaults opened on one folder with different actors record each: in the events, and in
every ``created_by`` / ``actor`` a write stores (dataset versions, configs, runs, model
versions, alias moves, evaluations, the reason of an abandoned run). The default is read
once, at the edge: LENSVAULT_USER, else git's user.email, else the OS user.
"""

from __future__ import annotations

import ast
import json
import os
import sys
from pathlib import Path

import pytest

import lensvault
from lensvault.errors import UsageError
from tests.runs.conftest import GIT_ENV, git

SRC = Path(lensvault.__file__).parent


def test_two_vaults_on_one_folder_record_their_own_actor(project):
    from tests.runs.test_crashed_runs import _running_run

    root = project.root
    alice = lensvault.open(root, actor="alice@example.com")
    bob = lensvault.open(root, actor="Bob Builder")
    try:
        with open(os.devnull, "wb") as quiet:
            run = alice.run([sys.executable, "train.py"], dataset="shapes@1.0.0", config="C-01", model="det",
                            version="1.0.0", stream=quiet, cwd=root)
        assert run.status == "succeeded"
        bob.register_model("det", run=run.run_id, weights=root / "runs" / run.run_id / "model.npz", version="1.0.0")
        alice.promote("det@1.0.0", "production", new=True)
        gt = json.loads((root / "raw" / "annotations" / "instances.json").read_text())
        name_of = {i["id"]: i["file_name"] for i in gt["images"]}
        preds = root / "preds.json"
        preds.write_text(json.dumps([{"file_name": name_of[a["image_id"]], "category_id": a["category_id"],
                                      "bbox": a["bbox"], "score": 1.0} for a in gt["annotations"]]))
        ev = bob.evaluate(dataset="shapes@1.0.0", predictions=preds, split=None, model="det@1.0.0")
        (root / "configs" / "other.yaml").write_text("lr: 0.1\nseed: 1\n")
        bob.add_config(root / "configs" / "other.yaml", "C-02", uncommitted=True)
        alice.snapshot("notes", root / "configs", version="1.0.0")
        stuck = _running_run(bob, "2.0.0")
        ended = alice.abandon_run(stuck, force=True)

        by_subject = {(e["action"], e["subject"]): e["actor"] for e in bob.events()}
        assert by_subject[("run.start", run.run_id)] == "alice@example.com"
        assert by_subject[("run.finish", run.run_id)] == "alice@example.com"
        assert by_subject[("model.register", "det@1.0.0")] == "Bob Builder"
        assert by_subject[("model.promote", "det@production")] == "alice@example.com"
        assert by_subject[("evaluation.add", ev["eval_id"])] == "Bob Builder"
        assert by_subject[("config.add", "C-02")] == "Bob Builder"
        assert by_subject[("dataset.version.create", "notes@1.0.0")] == "alice@example.com"
        assert by_subject[("run.start", stuck)] == "Bob Builder"
        assert by_subject[("run.abandon", stuck)] == "alice@example.com"

        assert alice.dataset("notes@1.0.0").record.created_by == "alice@example.com"
        assert alice.dataset("notes@1.0.0").manifest().created_by == "alice@example.com"  # frozen with the version
        assert bob.get_run(run.run_id)["created_by"] == "alice@example.com"
        assert alice.get_run(stuck)["created_by"] == "Bob Builder"
        assert alice.model("det@1.0.0").created_by == "Bob Builder"
        assert alice.model("det@1.0.0").bundle["created_by"] == "Bob Builder"
        assert [m.actor for m in bob.model_history("det")] == ["alice@example.com"]
        assert [e["created_by"] for e in alice.evaluations()] == ["Bob Builder"]
        assert alice.get_config("C-02").created_by == "Bob Builder"
        assert ended.reason.startswith("abandoned by alice@example.com")
    finally:
        alice.close()
        bob.close()


def test_a_command_run_records_what_it_logs_as_the_actor_who_ran_it(sqlite_project, tmp_path):
    """The training script opens its own vault (lensvault.log_metrics); it gets the run's actor."""
    root = sqlite_project.root
    (root / "who.py").write_text("import lensvault\nfrom lensvault.tracking import active_run\n"
                                 "print('actor=' + active_run().vault.actor)\n")
    sqlite_project.commit_all("who")
    with lensvault.open(root, actor="carol") as carol:
        out = tmp_path / "who.log"
        with open(out, "wb") as stream:
            run = carol.run([sys.executable, "who.py"], dataset="shapes@1.0.0", config="C-01", stream=stream, cwd=root)
    assert run.status == "succeeded"
    assert "actor=carol" in out.read_text()


def test_the_default_actor_is_read_at_the_edge(sqlite_vault, monkeypatch):
    root = sqlite_vault.root
    monkeypatch.delenv("LENSVAULT_USER", raising=False)
    git("init", "-q", ".", cwd=root)
    git("config", "user.email", "erin@example.com", cwd=root)
    with lensvault.open(root) as v:
        assert v.actor == "erin@example.com"  # git's identity of the vault's repository
    monkeypatch.setenv("LENSVAULT_USER", "frank")
    with lensvault.open(root) as v:
        assert v.actor == "frank"  # the variable wins over git
        (root / "data" / "notes.txt").write_text("some data\n")
        v.snapshot("d", root / "data", version="1.0.0")
    with lensvault.open(root, actor="grace") as v:
        assert v.actor == "grace"  # and an explicit actor over both
    r = sqlite_vault_cli(root, "events", "--json", env={"LENSVAULT_USER": "heidi"})
    assert [e["actor"] for e in json.loads(r)][-1] == "frank"
    sqlite_vault_cli(root, "config", "add", "c.yaml", "--id", "C-09", "--uncommitted", env={"LENSVAULT_USER": "heidi"},
                     write=True)
    assert [e["actor"] for e in json.loads(sqlite_vault_cli(root, "events", "--json"))][-1] == "heidi"


def sqlite_vault_cli(root: Path, *args, env=None, write=False) -> str:
    import subprocess

    if write:
        (root / "c.yaml").write_text("seed: 1\n")
    r = subprocess.run([sys.executable, "-m", "lensvault.cli.main", *args], cwd=root, capture_output=True, text=True,
                       env={**os.environ, **GIT_ENV, **(env or {})})
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize("bad", ["", "   ", "two\nlines", "x" * 201])
def test_an_actor_that_cannot_be_recorded_is_refused(sqlite_vault, bad):
    with pytest.raises(UsageError) as e:
        lensvault.open(sqlite_vault.root, actor=bad)
    assert e.value.fix


def test_a_catalog_opened_without_an_actor_writes_no_events(sqlite_vault):
    from lensvault.catalog import Catalog
    from lensvault.errors import CatalogError

    catalog = Catalog(sqlite_vault.catalog.url)
    try:
        with pytest.raises(CatalogError), catalog.begin() as conn:
            catalog.append_event(conn, "test", "test", "x")
    finally:
        catalog.close()


# The edge: where the acting user may be looked up. Everything else gets it from its vault.
EDGE = {"identity.py", "vault.py", "quickstart.py", "quickstart_tasks.py", "cli/_common.py", "runs/launcher.py"}


def test_nothing_below_the_vault_looks_up_the_user():
    found = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value == "LENSVAULT_USER" and rel not in EDGE:
                found.append(f"{rel}:{node.lineno} reads LENSVAULT_USER")
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = {a.name for a in node.names}
                if "getpass" in names and rel != "identity.py":
                    found.append(f"{rel}:{node.lineno} imports getpass")
                if node.__class__ is ast.ImportFrom and node.module == "lensvault.catalog.catalog" and "actor" in names:
                    found.append(f"{rel}:{node.lineno} imports the catalog's default actor()")
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("default_actor", "configured_identity") \
                    and rel not in EDGE:
                found.append(f"{rel}:{node.lineno} looks the user up itself")
    assert found == []
