"""A write killed between its ledger entries and its catalog COMMIT — the moment a random kill
rarely hits (a few milliseconds of a command), so it is hit here on purpose, in a real process:
right after the store recorded the write, after its manifest file (a dataset version), both
before COMMIT; and right after COMMIT (before the write's intent is removed).

Before COMMIT the write did not happen: `verify` is clean, every listing is as before, the
same command run again succeeds (it finishes the killed write's leftovers first: journal
entry, write-once ref, alias ref, manifest file), and gc leaves nothing. After COMMIT the
write happened: the same command says it exists. Either way a rebuilt catalog lists exactly
what the live one lists: the store and the catalog agree.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .compare import assert_same, without_rebuild_events
from .conftest import _env

# Each write, through the library in a process that kills itself at the chosen moment.
WRITES = {
    "snapshot": ("vault.snapshot('plain', 'plain-src', version='2.0.0', force=True)",
                 ("dataset", "snapshot", "plain", "plain-src", "--version", "2.0.0", "--force")),
    "fix": ("vault.fix('shapes@1.0.0', 'labels-fixed/instances.json', version='1.0.2')",
            ("dataset", "fix", "shapes@1.0.0", "--annotations", "labels-fixed/instances.json", "--version", "1.0.2")),
    "config add": ("vault.add_config('configs/base.yaml', 'C-09')", ("config", "add", "configs/base.yaml", "--id", "C-09")),
    "model register": (("vault.register_model('detector', run='{run2}', weights='runs/{run2}/model.npz', "
                        "version='3.0.0', force=True)"),
                       ("model", "register", "detector", "--run", "{run2}", "--weights", "runs/{run2}/model.npz",
                        "--version", "3.0.0", "--force")),
    "promote": ("vault.promote('detector@1.1.0', 'production', reason='again')",
                ("model", "promote", "detector@1.1.0", "production", "--reason", "again")),
}

VERSIONS = {"snapshot": "plain@2.0.0", "fix": "shapes@1.0.2"}

KILL = """
import os, signal, sys
import lensvault
import lensvault.ledger as ledger
from lensvault.catalog.catalog import Transaction

def die(*a, **k):
    os.kill(os.getpid(), signal.SIGKILL)

def then_die(fn):
    def call(*a, **k):
        fn(*a, **k)
        die()
    return call

if sys.argv[1] == "after its ledger record":
    ledger.record = then_die(ledger.record)
elif sys.argv[1] == "after its manifest file":
    import lensvault.datasets.snapshot as snapshot
    snapshot.write_manifest_file = then_die(snapshot.write_manifest_file)
else:
    Transaction.committed = die
vault = lensvault.open(".")
"""


def _kill_during(project, write: str, moment: str) -> None:
    code = KILL + WRITES[write][0].format(**project.ids) + "\n"
    r = subprocess.run([sys.executable, "-c", code, moment], cwd=project.root, env=_env(), capture_output=True,
                       text=True, timeout=180)
    assert r.returncode == -9, r.stderr


def _pending(project) -> list[str]:
    d = project.root / ".lensvault" / "objects" / "ledgers"
    return sorted(str(p) for p in d.glob("*/pending/*"))


CASES = [(w, m) for w in sorted(WRITES) for m in ("after its ledger record", "after its manifest file", "after COMMIT")
         if m != "after its manifest file" or w in ("snapshot", "fix")]


@pytest.mark.parametrize("write,moment", CASES)
def test_a_write_killed_at_its_commit_is_whole_or_absent_and_the_retry_works(project, write, moment):
    before, journal, manifests = project.listings(), project.journal(), project.manifests()
    _kill_during(project, write, moment)
    assert _pending(project)  # the intent the killed write left

    r = project.lv("verify")
    assert r.returncode == 0, r.stdout + r.stderr  # no version "the catalog lacks"
    now = project.listings()
    if moment != "after COMMIT":
        assert_same(now, before)  # nothing of it is visible
        stray = set(project.manifests()) - set(manifests)
        assert stray == ({f"{VERSIONS[write].replace('@', '/')}.json"} if moment == "after its manifest file" else set())
        if write in VERSIONS:  # not even through the manifest file it left (read without the catalog)
            r = project.lv("dataset", "show", VERSIONS[write])
            assert r.returncode == 3 and "does not exist" in r.stderr, r.stdout + r.stderr
    else:
        assert now != before

    # The same command again: it finishes the killed write first.
    r = project.lv(*(a.format(**project.ids) for a in WRITES[write][1]))
    if moment != "after COMMIT" or write == "promote":
        assert r.returncode == 0, r.stdout + r.stderr
    else:
        assert r.returncode == 4 and "Traceback" not in r.stderr, r.stdout + r.stderr
    assert "Traceback" not in r.stderr

    r = project.lv("gc", "--yes")
    assert r.returncode == 0, r.stderr
    assert _pending(project) == [] and project.lv("verify").returncode == 0
    after = project.listings()
    # One write's record more in the store than before, whatever the moment (two for a promote
    # done twice); none of the killed write's, if it did not commit. (gc's own event is a record too.)
    added = [e for e in project.journal() if e not in journal and "-events-" not in e]
    assert len(added) == (2 if write == "promote" and moment == "after COMMIT" else 1), added

    # The store and the catalog agree: a rebuilt catalog lists exactly the same.
    r = project.lv("catalog", "rebuild", "--force", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["unproven"] == []
    assert_same(without_rebuild_events(project.listings()), without_rebuild_events(after))


def test_gc_finishes_a_killed_write_with_the_default_grace_period(project):
    """Nobody ran the command again: gc lists the killed write's leftovers and undoes them."""
    journal, manifests = project.journal(), project.manifests()
    _kill_during(project, "snapshot", "after its manifest file")
    assert project.manifests() != manifests  # the killed write had written its manifest file
    plan = json.loads(project.lv("gc", "--json").stdout)["plan"]
    assert [x["kind"] for x in plan["leftovers"]] == ["unfinished catalog write"]
    r = project.lv("gc", "--yes")
    assert r.returncode == 0 and "unfinished catalog write" in r.stdout, r.stdout + r.stderr
    added = [e for e in project.journal() if e not in journal]
    assert [e.rsplit("/", 1)[-1].split("-")[1] for e in added] == ["events"]  # gc's own event; nothing of the killed write
    assert project.manifests() == manifests and _pending(project) == []
    r = project.lv(*WRITES["snapshot"][1])
    assert r.returncode == 0, r.stderr
