"""Read-only commands on a SQLite catalog never import SQLAlchemy (nor pyarrow): its import alone
cost 160–230 ms of a 275 ms ``runs list`` (issue 16's 200 ms budget for ``dataset log``, ``runs
list``, ``lineage … --down`` and ``why`` at scale). Each command runs in a fresh interpreter
that reports, on its way out, which heavy packages got imported.

The vault is small and made here: a snapshot through the API, runs, a model's versions, an alias
and evaluations written through the repositories (the catalog is all these commands read).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

T = "2026-03-01T00:00:0{}.000000Z"
HEAVY = ("sqlalchemy", "pyarrow", "psycopg")
REPORT = ("import atexit, sys\n"
          "atexit.register(lambda: print('HEAVY=' + ','.join(sorted({m.split('.')[0] for m in sys.modules} "
          f"& set({HEAVY!r}))), file=sys.stderr))\n"
          "from lensvault.cli.main import main\n"
          "main()\n")


@pytest.fixture(scope="module")
def small_vault(tmp_path_factory):
    import lensvault
    from lensvault.catalog.repos import AliasRepo, ConfigRepo, EvaluationRepo, ModelRepo, RunRepo

    root = tmp_path_factory.mktemp("light") / "vault"
    vault = lensvault.init(root, actor="t@example.com")
    (root / "imgs").mkdir()
    (root / "imgs" / "a.txt").write_text("a")
    vault.snapshot("ds", root / "imgs", version="1.0.0")
    (root / "imgs" / "b.txt").write_text("b")
    vault.snapshot("ds", root / "imgs", version="1.1.0")
    with vault.catalog.begin() as conn:
        for k in (1, 2):
            ConfigRepo(conn).add({"config_id": f"C-0{k}", "sha256": f"{k}" * 64, "canonical_sha256": f"{k}" * 64,
                                  "repo_path": "cfg.yaml", "commit": None, "format": "yaml",
                                  "content": json.dumps({"lr": 0.01 * k}), "created_at": T.format(k),
                                  "created_by": "t"})
            run_id = f"2026-03-01T00-00-0{k}Z-run{k}"
            RunRepo(conn).add({"run_id": run_id, "status": "succeeded", "kind": "run", "clean": k == 1,
                               "dataset": "ds@1.0.0", "config_id": f"C-0{k}", "started_at": T.format(k),
                               "ended_at": T.format(k), "created_by": "t", "seeds": '{"train": 1}',
                               "model_name": "m", "model_version": f"1.{k}.0"})
            RunRepo(conn).add_metric_points([(run_id, "AP", 0.1 * k, 1, None, None, T.format(k))])
            ModelRepo(conn).add({"name": "m", "version": f"1.{k}.0", "major": 1, "minor": k, "patch": 0,
                                 "run_id": run_id, "bundle_oid": "b" * 64, "dataset": "ds@1.0.0",
                                 "config_id": f"C-0{k}", "release_notes": "", "dirty": k == 2,
                                 "created_at": T.format(k), "created_by": "t"}, [])
            EvaluationRepo(conn).add({"eval_id": f"eval-{k}", "run_id": run_id, "model_name": "m",
                                      "model_version": f"1.{k}.0", "dataset": "ds@1.0.0", "dataset_snapshot": "s" * 64,
                                      "split": None, "metrics": json.dumps({"overall": {"AP": 0.1 * k}}),
                                      "created_at": T.format(k), "created_by": "t"})
        move = AliasRepo(conn).add_move({"name": "m", "alias": "production", "from_version": None,
                                         "to_version": "1.2.0", "action": "promote", "reason": None, "actor": "t",
                                         "at": T.format(3)})
        AliasRepo(conn).point("m", "production", "1.2.0", at=T.format(3), move_id=move, exists=False)
    vault.close()
    return root


COMMANDS = [
    # issue 16's four
    "dataset log ds", "runs list", "lineage ds@1.0.0 --down", "why m@1.1.0 m@production",
    "dataset log ds --json", "runs list --json", "lineage ds@1.0.0 --down --json", "why m@1.1.0 m@1.2.0 --json",
    # the other read-only catalog commands on the same design
    "dataset list", "runs show latest --json", "lineage m@production", "model list",
    "evals", "events --limit 5", "config list", "runs compare latest 2026-03-01T00-00-01Z-run1",
]


@pytest.fixture(scope="module")
def git_spy(tmp_path_factory):
    """A ``git`` first on PATH that notes it ran: who the user is (``git config``) is looked up
    for a write's events, never for a read."""
    bin_dir = tmp_path_factory.mktemp("spy")
    (bin_dir / "git").write_text(f"#!/bin/sh\necho \"$@\" >> {bin_dir / 'ran'}\nexit 1\n")
    (bin_dir / "git").chmod(0o755)
    return bin_dir


@pytest.mark.parametrize("command", COMMANDS)
def test_a_read_only_command_on_sqlite_does_not_import_sqlalchemy(small_vault, git_spy, command):
    env = {k: v for k, v in os.environ.items() if k != "LENSVAULT_USER"}
    env["PATH"] = f"{git_spy}{os.pathsep}{env.get('PATH', '')}"
    r = subprocess.run([sys.executable, "-c", REPORT, *command.split()], cwd=small_vault, capture_output=True,
                       text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr + r.stdout
    assert r.stdout.strip()
    assert r.stderr.splitlines()[-1] == "HEAVY=", r.stderr
    assert not (git_spy / "ran").exists(), (git_spy / "ran").read_text()


def test_an_error_of_a_read_only_command_is_the_same_without_sqlalchemy(small_vault, tmp_path):
    """A missing dataset, and a catalog gone missing, still end in the clear errors they gave
    (the catalog is checked through sqlite3 now)."""
    r = subprocess.run([sys.executable, "-c", REPORT, "dataset", "log", "nope"], cwd=small_vault,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "no dataset named 'nope'" in r.stderr and r.stderr.splitlines()[-1] == "HEAVY="
    import shutil

    copy = tmp_path / "vault"
    shutil.copytree(small_vault, copy)
    (copy / ".lensvault" / "catalog.db").unlink()
    r = subprocess.run([sys.executable, "-c", REPORT, "runs", "list"], cwd=copy, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode != 0 and "is missing" in r.stderr and "catalog rebuild" in r.stderr
    assert not (copy / ".lensvault" / "catalog.db").exists()
