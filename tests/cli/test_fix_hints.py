"""Every command LensVault prints as a hint works as printed.

Each test brings about the state that makes LensVault print a hint (an error's fix, a note),
takes the command out of the printed text, fills in only the placeholders a user would fill
(NAME@X.Y.Z, PATH, ...), runs it with bash where the user ran the first command, and checks
that it does what the hint promises. ``test_every_hint_in_the_source_is_tested`` keeps the
list complete: a new backticked `lensvault …` / `git …` / `kill …` in the source fails it
until a test here runs the new hint.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import lv, lv_json, quoted, sh
from tests.cli.hints import printed_hints, source_hints

# Names of commands in running text, and messages that begin with "git", not hints to run.
MENTIONS = {"lensvault run", "git could not read the repository: {e.what}", "git history unavailable: {e}",
            "git is not installed", "git {args[0]} failed: {stderr or 'exit code ' + str(proc.returncode)}"}

# hint template (as in the source, f-string fields as {expr}) -> the test here that runs it
TESTED = {
    "lensvault remote add origin s3://BUCKET/PREFIX --default": "tests/remotes/test_hints.py::test_remote_config_hints",
    "lensvault remote add {name} URL": "tests/remotes/test_hints.py::test_remote_config_hints",
    "lensvault remote remove {name}": "tests/remotes/test_hints.py::test_remote_config_hints",
    "lensvault push --all": "tests/remotes/test_hints.py::test_clone_of_an_empty_location_says_to_push_first",
    "lensvault push --all --check-remote":
        "tests/remotes/test_hints.py::test_damaged_and_lost_remote_objects_are_replaced_by_check_remote",
    "lensvault pull REF": "tests/remotes/test_hints.py::test_fetch_and_automatic_fetch_hints",
    "lensvault pull {ref}": "tests/remotes/test_hints.py::test_fetch_and_automatic_fetch_hints",
    "lensvault dataset show {ref} --files": "tests/remotes/test_hints.py::test_fetch_and_automatic_fetch_hints",
    "lensvault remote add {name} {url} --default": "tests/remotes/test_hints.py::test_fetch_and_automatic_fetch_hints",
    "lensvault pull {d['alias']}":
        "tests/remotes/test_fetch.py::test_vision_dataset_model_pull_and_reproduce_fetch_what_they_need",
    "lensvault pull {name}@{alias}": "tests/remotes/test_share.py::test_two_machines_promote_at_once_one_wins_the_other_pulls_and_decides_again",
    "lensvault model promote …": "tests/remotes/test_share.py::test_two_machines_promote_at_once_one_wins_the_other_pulls_and_decides_again",
    "lensvault push --all --remote {st.remote}":
        "tests/remotes/test_status.py::test_status_after_push_pull_and_a_partial_pull",
    "lensvault pull REF --remote {st.remote}": "tests/remotes/test_status.py::test_status_after_push_pull_and_a_partial_pull",
    "lensvault pull {refs[0]} --remote {remote}":
        "tests/remotes/test_hints.py::test_push_to_another_remote_of_what_was_fetched_names_where_it_is",
    "lensvault pull {c['name']} --remote {st.remote}":
        "tests/remotes/test_status.py::test_status_of_runs_models_configs_and_aliases",
    "lensvault verify --remote": "tests/remotes/test_gc.py::test_gc_refuses_when_what_a_record_needs_is_unknown",
    "lensvault remote list": "tests/remotes/test_verify.py::test_verify_remote_options",
    "lensvault gc --remote {plan.remote} --yes": "tests/remotes/test_gc.py::test_gc_plans_then_deletes_old_orphans_and_keeps_fresh_ones",
    "lensvault init": "test_no_vault_hints",
    "lensvault init {start}": "test_no_vault_hints",
    "lensvault dataset list": "test_not_found_hints_name_what_exists",
    "lensvault dataset log {name}": "test_not_found_hints_name_what_exists",
    "lensvault model list": "test_not_found_hints_name_what_exists",
    "lensvault model history {name}": "test_registry_hints",
    "lensvault model promote {name}@X.Y.Z {alias}": "test_registry_hints",
    "lensvault model promote {r.name}@X.Y.Z {r.alias} --new": "test_registry_hints",
    "lensvault model promote {ref} {alias} --new": "test_registry_hints",
    "lensvault model promote {ref} {close[0]}": "test_registry_hints",
    "lensvault model promote {r.name}@{row.version} {alias}": "test_registry_hints",
    "lensvault runs list": "test_not_found_hints_name_what_exists",
    "lensvault config list": "test_not_found_hints_name_what_exists",
    "lensvault config add PATH --id {config_id}": "test_not_found_hints_name_what_exists",
    "lensvault run --dataset NAME@X.Y.Z --config ID -- CMD": "test_empty_vault_hints",
    "lensvault run --dataset NAME@VER --config ID -- CMD": "test_empty_vault_hints",
    "lensvault config add PATH --id C-01": "test_empty_vault_hints",
    "lensvault dataset snapshot NAME SRC --version 1.0.0": "test_empty_vault_hints",
    "git init": "test_preflight_git_hints",
    "git add -A && git commit -m 'Training code'": "test_preflight_git_hints",
    "git status": "test_preflight_git_hints",
    "git rm -r -q --cached {' '.join(own)} && git commit -m 'Stop tracking LensVault files'":
        "test_preflight_own_files_tracked_hint",
    "git checkout -- {cfg.repo_path}": "test_preflight_config_hints",
    "git checkout {cfg.commit or 'HEAD'} -- {cfg.repo_path}": "test_preflight_config_hints",
    "lensvault config add {cfg.repo_path}": "test_preflight_config_hints",
    "git add {cfg.repo_path} && git commit -m 'Add {cfg.repo_path}'": "test_preflight_config_hints",
    "lensvault config add PATH": "test_preflight_config_hints",
    "lensvault model list {name}": "test_registry_hints",
    "lensvault verify": "test_store_damage_hints",
    "lensvault verify {ds.ref}": "test_store_damage_hints",
    "lensvault verify {rec.ref}": "test_store_damage_hints",
    "lensvault verify {ref}": "test_store_damage_hints",
    "lensvault verify {row.dataset}": "test_reproduce_hints",
    "lensvault dataset show {rec.ref} --restore-manifest": "test_manifest_file_hints",
    "lensvault catalog rebuild": "test_catalog_recovery_hints",
    "lensvault catalog rebuild --force": "test_catalog_recovery_hints",
    "lensvault verify {v.ref}": "test_catalog_recovery_hints",
    "lensvault gc --yes": "test_gc_hint_repeats_the_options",
    "lensvault verify --repair": "test_repair_hints",
    "lensvault verify --repair --from DIR": "test_repair_hints",
    "lensvault runs log {result.run_id}": "test_reproduce_hints",
    "lensvault runs show {run_id}": "test_run_hints",
    "lensvault runs show {result.run_id}": "test_run_hints",
    "lensvault runs log {r['run_id']}": "test_run_hints",
    "lensvault runs show RUN": "test_run_hints",
    "kill {owner.pid}": "test_run_hints",
    "lensvault dataset show {ref} --json": "test_findings_hint",
    "lensvault dataset show {d['ref']}": "test_skipped_images_hint",
    "lensvault dataset snapshot {ds.name} {source.get('path') or 'SRC'} --format {source.get('format') or 'auto'} "
    "--annotations CORRECTED --bump auto": "test_fix_of_annotations_from_outside_hint",
    "lensvault dataset export NAME@VER DIR --format coco": "test_eval_hint",
    "lensvault eval --dataset NAME@VER --split test --predictions preds.json": "test_eval_hint",
    "git log": "test_git_hints",
    "git fetch": "test_git_hints",
    "git ls-tree -r --name-only {sha[:12]}": "test_git_hints",
    "git worktree list": "test_git_hints",
    "lensvault eval {target} --dataset {data} --split {split} --predictions PREDICTIONS.json": "test_why_hints",
    "lensvault model rollback {b['model']} {protected[0]}": "test_why_hints",
    # Runs the whole product (about a minute): tests/quickstart/test_quickstart.py does exactly this,
    # and types the commands it printed ("lensvault " + the arguments) again.
    "lensvault quickstart DIR": "tests/quickstart/test_quickstart.py",
    "lensvault token list": "tests/server/test_tokens.py",
    "lensvault token revoke {name}": "tests/server/test_tokens.py",
    "lensvault token create NAME --role read|write|admin": "tests/server/test_tokens.py",
    "lensvault token create NAME --role read": "tests/server/test_api.py",
    "lensvault ": "tests/quickstart/test_quickstart.py",
    # The `git add` that snapshot and fix end with, from the repository or from outside it.
    "git add ": "tests/cli/test_git_hints_and_run_refs.py",
    "git -C {shlex.quote(str(root))} add ": "tests/cli/test_git_hints_and_run_refs.py",
}


def test_every_hint_in_the_source_is_tested():
    found = set(source_hints()) - MENTIONS
    assert found - set(TESTED) == set(), "hints no test runs: add a test and list it in TESTED"
    assert set(TESTED) - found == set(), "TESTED lists hints the source no longer prints"
    names = {k for k in globals() if k.startswith("test_")}
    assert {t for t in TESTED.values() if not t.startswith("tests/")} <= names


def hint(text: str, start: str, fill: dict[str, str] | None = None) -> str:
    """The printed hint beginning with ``start``, placeholders filled."""
    found = [h for h in printed_hints(text) if h.startswith(start)]
    assert found, f"no hint starting {start!r} in:\n{text}"
    cmd = found[0]
    for k, v in (fill or {}).items():
        assert k in cmd, (k, cmd)
        cmd = cmd.replace(k, v)
    return cmd


def ok(command: str, cwd: Path, codes=(0,)) -> subprocess.CompletedProcess:
    r = sh(command, cwd)
    assert r.returncode in codes, f"`{command}` as printed failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r


# --------------------------------------------------------------------------- no vault, empty vault


def test_no_vault_hints(tmp_path):
    here = tmp_path / "project"
    here.mkdir()
    r = lv("dataset", "list", cwd=here)
    assert r.returncode == 3
    ok(hint(r.stderr, "lensvault init"), here)
    assert lv("dataset", "list", cwd=here).returncode == 0

    elsewhere = tmp_path / "elsewhere"
    r = lv("--vault", elsewhere, "dataset", "list", cwd=here)
    assert r.returncode == 3
    ok(hint(r.stderr, "lensvault init"), here)
    assert lv("--vault", elsewhere, "dataset", "list", cwd=here).returncode == 0


def test_empty_vault_hints(tmp_path):
    from tests.runs.conftest import git

    root = tmp_path / "repo"
    root.mkdir()
    git("init", "-q", ".", cwd=root)
    assert lv("init", cwd=root).returncode == 0
    r = lv("dataset", "list", cwd=root)
    from lensvault.demo.shapes import generate_shapes

    generate_shapes(root / "raw", n_images=6, seed=1)
    ok(hint(r.stdout, "lensvault dataset snapshot", {"NAME": "plain", "SRC": "raw"}), root)
    assert lv_json("dataset", "list", cwd=root)[0]["name"] == "plain"
    assert lv("dataset", "snapshot", "shapes", "raw", "--format", "coco", "--split", "70/20/10", "--seed", "42",
              "--version", "1.0.0", cwd=root).returncode == 0
    r = lv("config", "list", cwd=root)
    (root / "cfg.yaml").write_text("seed: 3\n")
    (root / "train.py").write_text("print('trained')\n")
    (root / ".gitignore").write_text("/raw/\n/.lensvault/\n/runs/\n")
    ok("git add -A && git commit -qm code", root)
    ok(hint(r.stdout, "lensvault config add", {"PATH": "cfg.yaml"}), root)
    r = lv("runs", "list", cwd=root)
    ok(hint(r.stdout, "lensvault run", {"NAME@VER": "shapes@1.0.0", "ID": "C-01", "CMD": "python train.py"}), root)
    r = lv("runs", "show", "latest", cwd=root)
    assert r.returncode == 0  # one run now
    # with no runs at all, `latest` says how to start one
    empty = tmp_path / "empty"
    empty.mkdir()
    git("init", "-q", ".", cwd=empty)
    assert lv("init", cwd=empty).returncode == 0
    r = lv("runs", "show", "latest", cwd=empty)
    assert r.returncode == 3 and "no runs yet" in r.stderr
    cmd = hint(r.stderr, "lensvault run", {"NAME@X.Y.Z": "shapes@1.0.0", "ID": "C-01", "CMD": "python train.py"})
    ok(cmd, root)  # the same command works in the vault that has the dataset and config


# --------------------------------------------------------------------------- not found: what exists


def test_not_found_hints_name_what_exists(proj):
    root = proj.root
    r = lv("dataset", "show", "nosuch@1.0.0", cwd=root)
    assert r.returncode == 3
    assert "shapes" in ok(hint(r.stderr, "lensvault dataset list"), root).stdout
    r = lv("dataset", "snapshot", "shapes", "raw", "--version", "2.0.0", "--parent", "0.9.0", cwd=root)
    assert r.returncode == 3
    assert "shapes@1.0.0" in ok(hint(r.stderr, "lensvault dataset log"), root).stdout
    r = lv("model", "show", "nosuch@1.0.0", cwd=root)
    assert r.returncode == 3
    ok(hint(r.stderr, "lensvault model list"), root)
    r = lv("runs", "show", "2099-01-01T00-00-00Z-ffff", cwd=root)
    assert r.returncode == 3
    ok(hint(r.stderr, "lensvault runs list"), root)
    r = lv("config", "show", "C-77", cwd=root)
    assert r.returncode == 3
    assert "C-01" in ok(hint(r.stderr, "lensvault config list"), root).stdout
    (root / "configs" / "other.yaml").write_text("seed: 5\nlr: 0.1\n")
    proj.commit_all("other config")
    ok(hint(r.stderr, "lensvault config add", {"PATH": "configs/other.yaml"}), root)
    assert lv("config", "show", "C-77", cwd=root).returncode == 0
    r = lv("lineage", "nothing-like-this", cwd=root)
    assert r.returncode == 3
    for cmd in printed_hints(r.stderr):
        ok(cmd, root)
    assert len(printed_hints(r.stderr)) == 4


# --------------------------------------------------------------------------- preflight


def test_preflight_git_hints(tmp_path):
    import lensvault

    root = tmp_path / "repo"
    vault = lensvault.init(root)
    from lensvault.demo.shapes import generate_shapes

    generate_shapes(root / "raw", n_images=6, seed=1)
    vault.snapshot("shapes", root / "raw", version="1.0.0", format="coco", split="70/20/10", seed=42)
    vault.close()
    (root / "cfg.yaml").write_text("seed: 3\n")
    pre = ["preflight", "--dataset", "shapes@1.0.0", "--config", "C-01"]
    r = lv(*pre, cwd=root)
    assert r.returncode == 7 and "not in a git repository" in r.stderr
    ok(hint(r.stderr, "git init"), root)
    r = lv(*pre, cwd=root)
    assert r.returncode == 7 and "no commits yet" in r.stderr
    (root / ".gitignore").write_text("/raw/\n")
    ok(hint(r.stderr, "git add -A"), root)
    assert lv("config", "add", "cfg.yaml", "--id", "C-01", cwd=root).returncode == 0
    assert lv(*pre, cwd=root).returncode == 0
    (root / "cfg.yaml").write_text("seed: 3\n# edited\n")
    r = lv(*pre, cwd=root)
    assert r.returncode == 7 and "modified: cfg.yaml" in r.stderr
    assert "cfg.yaml" in ok(hint(r.stderr, "git status"), root).stdout


@pytest.mark.parametrize("tracked", [[".lensvault"], [".lensvault", "runs"]])
def test_preflight_own_files_tracked_hint(proj, tracked):
    """Tracked LensVault files: the printed `git rm` names only folders git tracks (runs/ may not exist)."""
    root = proj.root
    (root / ".gitignore").write_text("raw/\n")
    if "runs" in tracked:
        (root / "runs").mkdir(exist_ok=True)
        (root / "runs" / "old.txt").write_text("an old output\n")
    else:
        assert not (root / "runs").exists()
    proj.git("add", "-A", "-f", *tracked)
    proj.commit_all("oops: LensVault files committed")
    (root / ".gitignore").write_text("raw/\nraw2/\n")
    proj.commit_all("ignore raw2")
    (root / "raw2").mkdir()
    (root / "raw2" / "x.txt").write_text("new data\n")
    proj.vault.snapshot("extra", root / "raw2", version="1.0.0")
    proj.vault.close()  # SQLite moves the write-ahead log into catalog.db: a tracked file changes
    if "runs" in tracked:
        (root / "runs" / "old.txt").write_text("changed\n")
    pre = ["preflight", "--dataset", "shapes@1.0.0", "--config", "C-01"]
    r = lv(*pre, cwd=root)
    assert r.returncode == 7 and "LensVault's own files are tracked" in r.stderr
    cmd = hint(r.stderr, "git rm")
    assert cmd.split("--cached ")[1].split(" &&")[0].split() == sorted(tracked)
    ok(cmd, root)
    ok("git add data/manifests && git commit -qm 'Dataset extra@1.0.0'", root)  # the new version's manifest
    assert lv(*pre, cwd=root).returncode == 0, lv(*pre, cwd=root).stderr
    assert ".lensvault" not in proj.git("ls-files")


def test_preflight_config_hints(proj):
    root = proj.root
    pre = ["preflight", "--dataset", "shapes@1.0.0", "--config", "C-01"]
    cfg = root / "configs" / "base.yaml"
    original = cfg.read_bytes()
    # deleted
    cfg.unlink()
    r = lv(*pre, cwd=root)
    assert r.returncode == 7 and "no longer exists" in r.stderr
    ok(hint(r.stderr, "git checkout --"), root)
    assert cfg.read_bytes() == original and lv(*pre, cwd=root).returncode == 0
    # changed: restore it ...
    cfg.write_text("lr: 0.5\nseed: 2024\n")
    proj.commit_all("tune lr")
    r = lv(*pre, cwd=root)
    assert r.returncode == 7 and "changed since it was registered" in r.stderr
    ok(hint(r.stderr, "git checkout "), root)
    assert cfg.read_bytes() == original
    # ... or register the new content under a new ID
    proj.git("checkout", "HEAD", "--", "configs/base.yaml")
    r = lv(*pre, cwd=root)
    out = ok(hint(r.stderr, "lensvault config add"), root)
    new_id = out.stdout.split()[1].rstrip(":")
    assert lv("preflight", "--dataset", "shapes@1.0.0", "--config", new_id, cwd=root).returncode == 0
    # registered while untracked: add and commit it, then register it again
    (root / "configs" / "fresh.yaml").write_text("seed: 7\n")
    assert lv("config", "add", "configs/fresh.yaml", "--id", "C-50", "--uncommitted", cwd=root).returncode == 0
    r = lv("preflight", "--dataset", "shapes@1.0.0", "--config", "C-50", cwd=root)
    assert r.returncode == 7 and "is not tracked by git" in r.stderr
    ok(hint(r.stderr, "git add configs/fresh.yaml"), root)
    out = ok(hint(r.stderr.split("git add configs/fresh.yaml")[1], "lensvault config add"), root)
    assert lv("preflight", "--dataset", "shapes@1.0.0", "--config", out.stdout.split()[1].rstrip(":"),
              cwd=root).returncode == 0
    # no config at all
    r = lv("preflight", "--dataset", "shapes@1.0.0", cwd=root)
    assert r.returncode == 7
    ok(hint(r.stderr, "lensvault config add", {"PATH": "configs/base.yaml"}), root)


# --------------------------------------------------------------------------- registry


def _one_registered_model(proj) -> str:
    r = lv("run", "--dataset", "shapes@1.0.0", "--config", "C-01", "--", sys.executable, "train.py", cwd=proj.root,
           env={"STEPS": "2"})
    assert r.returncode == 0, r.stderr
    run = lv_json("runs", "show", "latest", cwd=proj.root)["run_id"]
    for v in ("1.0.0", "1.1.0"):
        assert lv("model", "register", "det", "--run", run, "--weights", f"runs/{run}/model.npz", "--version", v,
                  *(["--force"] if v != "1.0.0" else []), cwd=proj.root).returncode == 0
    return run


def test_registry_hints(proj):
    root = proj.root
    _one_registered_model(proj)
    r = lv("model", "rollback", "det", "production", cwd=root)
    assert r.returncode == 3
    ok(hint(r.stderr, "lensvault model history"), root)
    r = lv("model", "show", "det@production", cwd=root)
    assert r.returncode == 3
    ok(hint(r.stderr, "lensvault model promote", {"X.Y.Z": "1.0.0"}), root)
    r = lv("model", "rollback", "det", "production", cwd=root)
    assert r.returncode == 3 and "no earlier version" in r.stderr
    ok(hint(r.stderr, "lensvault model promote", {"X.Y.Z": "1.1.0"}), root)
    assert lv("model", "rollback", "det", "production", cwd=root).returncode == 0
    r = lv("model", "promote", "det@1.1.0", "production", "--new", cwd=root)
    assert r.returncode == 4 and "already exists" in r.stderr
    assert "1.0.0 → 1.1.0" in ok(hint(r.stderr, "lensvault model promote"), root).stdout
    r = lv("model", "promote", "det@1.1.0", "staging", cwd=root)
    assert r.returncode == 2
    ok(hint(r.stderr, "lensvault model promote"), root)
    r = lv("model", "promote", "det@1.0.0", "stagin", cwd=root)
    assert r.returncode == 2
    assert "staging" in ok(hint(r.stderr, "lensvault model promote"), root).stdout
    r = lv("preflight", "--dataset", "shapes@1.0.0", "--config", "C-01", "--model", "det", "--version", "1.0.0", cwd=root)
    assert r.returncode == 7 and "already registered" in r.stderr
    assert "det@1.1.0" in ok(hint(r.stderr, "lensvault model list"), root).stdout


# --------------------------------------------------------------------------- store damage


def _lose(vault, oid: str) -> None:
    p = Path(vault.store.root) / oid[:2] / oid[2:]
    p.chmod(0o644)
    p.unlink()


def test_store_damage_hints(proj):
    root, vault = proj.root, proj.vault
    ds = vault.dataset("shapes@1.0.0")
    image = ds.files().to_pylist()[0]["sha256"]
    _lose(vault, image)
    r = lv("preflight", "--dataset", "shapes@1.0.0", "--config", "C-01", cwd=root)
    assert r.returncode == 7
    out = ok(hint(r.stderr, "lensvault verify"), root, codes=(1,))
    assert f"MISSING  {image}" in out.stdout
    r = lv("dataset", "checkout", "shapes@1.0.0", root.parent / "co", "--link", "copy", cwd=root)
    assert r.returncode == 3
    assert image in ok(hint(r.stderr, "lensvault verify"), root, codes=(1,)).stdout
    # a version whose files table is gone: gc cannot tell what is garbage and says how to find out
    files_oid = ds.manifest().tables["files"]["oid"]
    _lose(vault, files_oid)
    r = lv("gc", cwd=root)
    assert r.returncode != 0
    assert files_oid in ok(hint(r.stderr, "lensvault verify"), root, codes=(1,)).stdout
    r = lv("dataset", "show", "shapes@1.0.0", "--files", cwd=root)
    assert r.returncode == 3
    assert files_oid in ok(hint(r.stderr, "lensvault verify"), root, codes=(1,)).stdout


def test_manifest_file_hints(proj):
    root = proj.root
    path = root / "data" / "manifests" / "shapes" / "1.0.0.json"
    original = path.read_bytes()
    path.unlink()
    r = lv("verify", cwd=root)
    assert r.returncode == 1 and "MANIFEST MISSING" in r.stdout
    ok(hint(r.stdout, "lensvault dataset show"), root)
    assert path.read_bytes() == original and lv("verify", cwd=root).returncode == 0
    path.chmod(0o644)
    path.write_text("{}")
    r = lv("verify", cwd=root)
    assert r.returncode == 1 and "MANIFEST MODIFIED" in r.stdout
    ok(hint(r.stdout, "lensvault dataset show"), root)
    assert path.read_bytes() == original and lv("verify", cwd=root).returncode == 0


def test_catalog_recovery_hints(proj):
    root, vault = proj.root, proj.vault
    vault.close()
    catalog = root / ".lensvault" / "catalog.db"
    catalog.unlink()
    r = lv("dataset", "list", cwd=root)
    assert r.returncode == 10 and not catalog.exists()
    ok(hint(r.stderr, "lensvault catalog rebuild"), root)
    assert [d["name"] for d in lv_json("dataset", "list", cwd=root)] == ["shapes"]
    catalog.write_bytes(b"not a database, not any more" * 200)
    r = lv("runs", "list", cwd=root)
    assert r.returncode == 10
    ok(hint(r.stderr, "lensvault catalog rebuild --force"), root)
    assert lv_json("config", "list", cwd=root)[0]["config_id"] == "C-01"
    # A version only the store proves (the catalog lost it) whose files table is gone: gc cannot
    # tell what is garbage, and says which version to check.
    import sqlite3

    with lensvault_open(root) as v:
        files_oid = v.dataset("shapes@1.0.0").manifest().tables["files"]["oid"]
    con = sqlite3.connect(catalog, isolation_level=None)
    con.execute("DROP TRIGGER dataset_versions_no_delete")
    con.execute("DELETE FROM dataset_versions")
    con.close()
    (root / ".lensvault" / "cache").rename(root / ".lensvault" / "cache-gone")  # no cached listing either
    _lose(vault, files_oid)
    r = lv("gc", cwd=root)
    assert r.returncode == 5
    assert files_oid in ok(hint(r.stderr, "lensvault verify"), root, codes=(1,)).stdout


def lensvault_open(root):
    import lensvault

    return lensvault.open(root)


def test_repair_hints(proj):
    """Damaged objects name the repair; it works as printed, from the recorded source or a backup."""
    root, vault = proj.root, proj.vault
    ds = vault.dataset("shapes@1.0.0")
    rows = ds.files().to_pylist()
    bad = rows[0]["sha256"]
    p = Path(vault.store.root) / bad[:2] / bad[2:]
    p.chmod(0o644)
    with open(p, "r+b") as f:
        f.write(b"X")  # same size: only hashing tells
    r = lv("dataset", "checkout", "shapes@1.0.0", root.parent / "co", "--link", "copy", cwd=root)
    assert r.returncode == 5
    out = ok(hint(r.stderr, "lensvault verify --repair"), root)  # the source folder is still there
    assert f"REPAIRED {bad}" in out.stdout
    # Lost, and the folder it was snapshotted from moved away: the hint asks for a folder that has it.
    lost = rows[1]["sha256"]
    _lose(vault, lost)
    shutil.move(root / "raw", root.parent / "backup")
    r = lv("dataset", "checkout", "shapes@1.0.0", root.parent / "co", "--link", "copy", cwd=root)
    assert r.returncode == 3
    out = ok(hint(r.stderr, "lensvault verify --repair --from DIR", {"DIR": quoted(root.parent / "backup")}), root)
    assert f"REPAIRED {lost}" in out.stdout and lv("verify", cwd=root).returncode == 0


def test_gc_hint_repeats_the_options(proj):
    root = proj.root
    orphan = proj.vault.store.put_bytes(b"nothing refers to me")
    proj.vault.store.release_pins()  # (this process is alive: gc would keep what it pinned)
    r = lv("gc", "--grace", "0", "--force", cwd=root)
    assert r.returncode == 0 and "1 unreachable objects" in r.stdout
    out = ok(hint(r.stdout, "lensvault gc --yes"), root)
    assert "Deleted 1 objects" in out.stdout and not proj.vault.store.has(orphan)


# --------------------------------------------------------------------------- runs


def test_run_hints(proj):
    root = proj.root
    r = lv("run", "--dataset", "shapes@1.0.0", "--config", "C-01", "--", sys.executable, "train.py", cwd=root,
           env={"STEPS": "2"})
    assert r.returncode == 0
    shown = ok(hint(r.stderr, "lensvault runs show"), root).stdout
    assert "status=succeeded" in shown
    assert "images 12" in ok(hint(shown, "lensvault runs log"), root).stdout
    r = lv("runs", "abandon", "latest", cwd=root)
    assert r.returncode == 2 and "not running" in r.stderr
    ok(hint(r.stderr, "lensvault runs show"), root)
    # a run whose owner is alive: the hint names the process to stop
    (root / "sleeper.py").write_text("import os, time\nprint('ready', os.getpid(), flush=True)\ntime.sleep(600)\n")
    proj.commit_all("sleeper")
    proc = subprocess.Popen([sys.executable, "-m", "lensvault.cli.main", "run", "--dataset", "shapes@1.0.0", "--config",
                             "C-01", "--", sys.executable, "sleeper.py"], cwd=root,
                            env={**os.environ, "LENSVAULT_DIR": str(root)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    child = None
    try:
        line = proc.stdout.readline()
        assert line.startswith("ready"), line + proc.stderr.read()
        child = int(line.split()[1])
        running = lv_json("runs", "list", "--status", "running", cwd=root)[0]["run_id"]
        r = lv("runs", "abandon", running, cwd=root)
        assert r.returncode == 2
        ok(hint(r.stderr, "kill"), root)
        proc.wait(timeout=120)  # SIGTERM: the run stops its child and records how it ended
        assert lv_json("runs", "show", running, cwd=root)["status"] == "interrupted"
    finally:
        proc.kill()
        proc.wait()
        if child is not None:
            try:
                os.killpg(child, signal.SIGKILL)  # the training child runs in its own session
            except ProcessLookupError:
                pass
    # more metrics than columns: the note names the rest and how to see them
    r = lv("runs", "list", cwd=root)
    if "more metric" in r.stdout:
        run_id = lv_json("runs", "show", "latest", cwd=root)["run_id"]
        ok(hint(r.stdout, "lensvault runs show", {"RUN": run_id}), root)


def test_reproduce_hints(proj):
    root = proj.root
    r = lv("run", "--dataset", "shapes@1.0.0", "--config", "C-01", "--", sys.executable, "train.py", cwd=root,
           env={"STEPS": "2"})
    assert r.returncode == 0
    run = lv_json("runs", "show", "latest", cwd=root)["run_id"]
    r = lv("reproduce", run, cwd=root, env={"STEPS": "2", "EXIT_WITH": "4"})
    assert r.returncode == 1 and "FAIL" in r.stdout
    assert "to stderr" in ok(hint(r.stdout, "lensvault runs log"), root).stdout
    image = proj.vault.dataset("shapes@1.0.0").files().to_pylist()[0]["sha256"]
    _lose(proj.vault, image)
    r = lv("reproduce", run, cwd=root)
    assert r.returncode == 1
    assert image in ok(hint(r.stdout, "lensvault verify"), root, codes=(1,)).stdout


def test_findings_hint(tmp_path):
    import lensvault
    from tests.registry._helpers import make_coco

    images, ann = make_coco(tmp_path / "src", 25)
    data = json.loads(ann.read_text())
    for a in data["annotations"]:
        a["bbox"] = [2, 2, 0, 0]  # zero-area: a finding each
    ann.write_text(json.dumps(data))
    lensvault.init(tmp_path / "v").close()
    r = lv("dataset", "snapshot", "retail", images, "--format", "coco", "--annotations", ann, "--version", "1.0.0",
           cwd=tmp_path / "v")
    assert r.returncode == 0 and "25 validation finding(s)" in r.stdout and "… and 5 more" in r.stdout
    out = ok(hint(r.stdout, "lensvault dataset show"), tmp_path / "v")
    assert len(json.loads(out.stdout)["source"]["findings"]) == 25


def test_skipped_images_hint(tmp_path):
    import lensvault
    from tests.conftest import DATA

    src = tmp_path / "voc"
    for sub in ("Annotations", "JPEGImages"):
        (src / sub).mkdir(parents=True)
    for p in sorted((DATA / "bccd" / "BCCD" / "Annotations").iterdir())[:4]:
        shutil.copy(p, src / "Annotations" / p.name)
        shutil.copy(DATA / "bccd" / "BCCD" / "JPEGImages" / f"{p.stem}.jpg", src / "JPEGImages" / f"{p.stem}.jpg")
    cut = min((src / "JPEGImages").iterdir())
    cut.write_bytes(cut.read_bytes()[:-40])  # decoders read it only partly
    lensvault.init(tmp_path / "v").close()
    r = lv("dataset", "snapshot", "bccd", src, "--format", "voc", "--on-bad-image", "skip", "--version", "1.0.0",
           cwd=tmp_path / "v")
    assert r.returncode == 0, r.stderr
    assert "skipped images: 1" in r.stdout
    out = ok(hint(r.stdout, "lensvault dataset show"), tmp_path / "v")
    assert cut.name in out.stdout and "skipped images: 1" in out.stdout


def test_fix_of_annotations_from_outside_hint(tmp_path):
    import lensvault
    from tests.registry._helpers import make_coco

    images, ann = make_coco(tmp_path / "src", 4)  # the COCO file lies beside the images folder, not in it
    lensvault.init(tmp_path / "v").close()
    assert lv("dataset", "snapshot", "retail", images, "--format", "coco", "--annotations", ann, "--version", "1.0.0",
              cwd=tmp_path / "v").returncode == 0
    corrected = tmp_path / "corrected.json"
    data = json.loads(ann.read_text())
    data["annotations"][0]["bbox"] = [2, 2, 11, 11]
    corrected.write_text(json.dumps(data))
    r = lv("dataset", "fix", "retail@1.0.0", "--annotations", corrected, cwd=tmp_path / "v")
    assert r.returncode == 2
    out = ok(hint(r.stderr, "lensvault dataset snapshot", {"CORRECTED": quoted(corrected)}), tmp_path / "v")
    assert "Created retail@1.0.1" in out.stdout and "1 moved" in out.stdout, out.stdout


def test_eval_hint(proj, tmp_path):
    root = proj.root
    r = lv("evals", cwd=root)
    gt = json.loads((root / "raw" / "annotations" / "instances.json").read_text())
    images = proj.vault.dataset("shapes@1.0.0").images()
    test = {p.rsplit("/", 1)[-1] for p, sp in zip(images["path"].to_pylist(), images["split"].to_pylist()) if sp == "test"}
    name_of = {i["id"]: i["file_name"] for i in gt["images"]}
    (tmp_path / "preds.json").write_text(json.dumps([
        {"file_name": name_of[a["image_id"]], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
        for a in gt["annotations"] if name_of[a["image_id"]].rsplit("/", 1)[-1] in test]))
    out = ok(hint(r.stdout, "lensvault eval", {"NAME@VER": "shapes@1.0.0", "preds.json": quoted(tmp_path / "preds.json")}),
             root)
    assert "shapes@1.0.0" in out.stdout and "shapes@1.0.0" in lv("evals", cwd=root).stdout
    preds = tmp_path / "preds.json"
    preds.write_text(json.dumps([{"image_id": 99999, "category_id": 77, "bbox": [0, 0, 1, 1], "score": 0.5}]))
    r = lv("run", "--dataset", "shapes@1.0.0", "--config", "C-01", "--", sys.executable, "train.py", cwd=root,
           env={"STEPS": "2"})
    assert r.returncode == 0
    r = lv("eval", "--run", "latest", "--dataset", "shapes@1.0.0", "--predictions", preds, cwd=root)
    assert r.returncode == 6
    out = tmp_path / "exported"
    ok(hint(r.stderr, "lensvault dataset export", {"NAME@VER": "shapes@1.0.0", "DIR": quoted(out)}), root)
    assert (out / "annotations").is_dir() or any(out.iterdir())


SCORE = """\
import json, os
out = os.environ["LENSVAULT_OUTPUT_DIR"]
ap50 = float(os.environ["AP50"])
open(os.path.join(out, "model.npz"), "wb").write(b"weights %f" % ap50)
json.dump({"AP50": ap50, "AP": ap50 / 2}, open(os.path.join(out, "metrics.json"), "w"))
"""


def test_why_hints(proj, tmp_path):
    root = proj.root
    (root / "score.py").write_text(SCORE)
    proj.commit_all("score")

    def run(ds, ap50) -> str:
        r = lv("run", "--dataset", ds, "--config", "C-01", "--json", "--", sys.executable, "score.py", cwd=root,
               env={"AP50": str(ap50)})
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)["run_id"]

    good, bad = run("shapes@1.0.0", 0.8), run("shapes@1.0.0", 0.5)
    for run_id, v in ((good, "1.0.0"), (bad, "1.1.0")):
        assert lv("model", "register", "det", "--run", run_id, "--weights", f"runs/{run_id}/model.npz", "--version", v,
                  "--force", cwd=root).returncode == 0
    assert lv("model", "promote", "det@1.0.0", "production", "--new", cwd=root).returncode == 0
    assert lv("model", "promote", "det@1.1.0", "production", cwd=root).returncode == 0
    r = lv("why", "det@1.0.0", "det@production", cwd=root)
    assert r.returncode == 0 and "regressed" in r.stdout
    ok(r.stdout.strip().splitlines()[-1].strip(), root)  # the last line: the rollback command
    assert lv_json("model", "show", "det@production", cwd=root)["version"] == "1.0.0"
    # Runs on different data: the refusal says how to evaluate them on the same data
    proj.vault.snapshot("shapes", root / "raw", version="1.1.0", format="coco", split="70/20/10", seed=42, force=True)
    proj.vault.close()
    ok("git add data/manifests && git commit -qm 'shapes@1.1.0'", root)
    other = run("shapes@1.1.0", 0.7)
    r = lv("why", good, other, cwd=root)
    assert r.returncode == 2 and "have no metrics on the same data" in r.stderr
    cmd = hint(r.stderr, "lensvault eval")
    gt = json.loads((root / "raw" / "annotations" / "instances.json").read_text())
    dataset, split = cmd.split("--dataset ")[1].split()[0], cmd.split("--split ")[1].split()[0]
    import lensvault

    with lensvault.open(root) as vault:
        images = vault.dataset(dataset).images()
        chosen = {p.rsplit("/", 1)[-1] for p, sp in zip(images["path"].to_pylist(), images["split"].to_pylist())
                  if split == "all" or sp == split}
    name_of = {i["id"]: i["file_name"] for i in gt["images"]}
    preds = tmp_path / "preds.json"
    preds.write_text(json.dumps([{"file_name": name_of[a["image_id"]], "category_id": a["category_id"],
                                  "bbox": a["bbox"], "score": 1.0}
                                 for a in gt["annotations"] if name_of[a["image_id"]].rsplit("/", 1)[-1] in chosen]))
    ok(cmd.replace("PREDICTIONS.json", quoted(preds)), root)
    assert lv("why", good, other, "--allow-different-data", cwd=root).returncode == 0


def test_git_hints(proj, tmp_path):
    from lensvault import gitinfo
    from lensvault.errors import LensVaultError

    root = proj.root
    head = proj.git("rev-parse", "HEAD").strip()
    with pytest.raises(LensVaultError) as e:
        gitinfo.file_at_commit(head, "no/such/file.txt", repo=root)
    assert "train.py" in ok(hint(e.value.fix, "git ls-tree"), root).stdout
    with pytest.raises(LensVaultError) as e:
        gitinfo.files_changed("0" * 40, head, repo=root)
    ok(hint(e.value.fix, "git log"), root)
    ok(hint(e.value.fix, "git fetch"), root)
    under_a_file = tmp_path / "a-file"
    under_a_file.write_text("not a folder")
    with pytest.raises(LensVaultError) as e, gitinfo.worktree(root, head, under_a_file / "wt"):
        pass
    ok(hint(e.value.fix, "git worktree list"), root)
