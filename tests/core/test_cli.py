"""The CLI as users run it: real subprocesses, JSON output, exit codes, vault discovery."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from _lvtest import LV, lv, lv_many, write_files

import lensvault


@pytest.fixture(scope="module")
def populated(tmp_path_factory):
    """A vault with ds@1.0.0 and ds@1.1.0 and a second dataset, made through the API."""
    root = tmp_path_factory.mktemp("cli")
    vault = lensvault.init(root / "vault")
    src = write_files(root / "src", {"a.txt": "alpha", "b/c.txt": "gamma", "old.txt": "old"})
    vault.snapshot("ds", src, version="1.0.0", notes="first cut")
    (src / "a.txt").write_text("alpha v2")
    (src / "old.txt").rename(src / "new.txt")
    (src / "d.txt").write_text("delta")
    vault.snapshot("ds", src, version="1.1.0", notes="more")
    vault.snapshot("other", write_files(root / "src2", {"x.bin": b"\x00" * 5}), version="0.1.0")
    (vault.root / "deep" / "er").mkdir(parents=True)
    yield vault
    vault.close()


SHOW_KEYS = {"name", "version", "snapshot_id", "parent", "files", "bytes", "notes", "created_at"}


def test_reading_commands_print_json(populated):
    vault = populated
    cwd = vault.root / "deep" / "er"  # found by walking up
    r_list, r_log, r_show, r_diff, r_files = lv_many(
        [("dataset", "list", "--json"), ("dataset", "log", "ds", "--json"), ("dataset", "show", "ds@1.1.0", "--json"),
         ("dataset", "diff", "ds@1.0.0", "ds@1.1.0", "--json"), ("dataset", "show", "ds", "--files", "--json")],
        cwd=cwd)
    for r in (r_list, r_log, r_show, r_diff, r_files):
        assert r.returncode == 0, r.stderr
    listing = json.loads(r_list.stdout)
    assert [(d["name"], d["latest"], d["versions"]) for d in listing] == [("ds", "1.1.0", 2), ("other", "0.1.0", 1)]

    log = json.loads(r_log.stdout)
    assert [v["version"] for v in log] == ["1.1.0", "1.0.0"]  # newest first
    for entry in log:
        assert entry.keys() >= SHOW_KEYS
    assert log[1]["notes"] == "first cut" and log[1]["parent"] is None

    show = json.loads(r_show.stdout)
    assert show.keys() >= SHOW_KEYS
    v11 = vault.dataset("ds@1.1.0")
    assert (show["name"], show["version"], show["snapshot_id"], show["parent"], show["files"], show["bytes"],
            show["notes"]) == ("ds", "1.1.0", v11.snapshot_id, "ds@1.0.0", 4, 8 + 5 + 3 + 5, "more")
    assert show["created_at"] == v11.record.created_at

    diff = json.loads(r_diff.stdout)
    assert {"added", "removed", "modified", "renamed", "bytes"} <= diff.keys()
    assert diff["added"] == ["d.txt"] and diff["removed"] == [] and diff["modified"] == ["a.txt"]
    assert diff["renamed"] == [{"from": "old.txt", "to": "new.txt"}]
    assert diff["bytes"] == {"a": 13, "b": 21, "added": 5, "removed": 0, "modified_delta": 3, "delta": 8}

    files = json.loads(r_files.stdout)
    assert files["version"] == "1.1.0"  # a bare name is the latest
    assert sorted(f["path"] for f in files["file_list"]) == ["a.txt", "b/c.txt", "d.txt", "new.txt"]


def test_human_output_and_errors_go_to_the_right_streams(populated):
    r_show, r_missing, r_bad = lv_many(
        [("dataset", "show", "ds@1.0.0"), ("dataset", "show", "ds@9.9.9"), ("dataset", "show", "ds@1.x")],
        cwd=populated.root)
    assert r_show.returncode == 0 and "ds@1.0.0" in r_show.stdout and "first cut" in r_show.stdout
    assert r_missing.returncode == 3
    assert "Error: dataset version ds@9.9.9 does not exist" in r_missing.stderr
    assert "fix: known versions of ds: 1.0.0, 1.1.0" in r_missing.stderr and r_missing.stdout == ""
    assert r_bad.returncode == 2 and "fix:" in r_bad.stderr
    assert "Traceback" not in r_missing.stderr + r_bad.stderr


def test_checkout_then_status_without_a_ref(populated, tmp_path):
    dest = tmp_path / "work"
    r = lv("dataset", "checkout", "ds@1.0.0", dest, "--json", cwd=populated.root)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["files"] == 3
    clean, = lv_many([("--vault", populated.root, "status", "--json")], cwd=dest)
    assert clean.returncode == 0, clean.stderr
    st = json.loads(clean.stdout)
    assert st["clean"] and st["ref"] == "ds@1.0.0" and st["unchanged"] == 3
    (dest / "a.txt").write_text("edited")
    (dest / "z.txt").write_text("new")
    dirty_json, dirty_text = lv_many([("status", "--json"), ("status",)], cwd=dest,
                                     env={"LENSVAULT_DIR": str(populated.root)})
    assert dirty_json.returncode == 1 and dirty_text.returncode == 1
    st = json.loads(dirty_json.stdout)
    assert (st["added"], st["modified"], st["removed"]) == (["z.txt"], ["a.txt"], [])
    assert "~ a.txt" in dirty_text.stdout and "+ z.txt" in dirty_text.stdout


def test_vault_discovery(populated, tmp_path):
    outside = tmp_path / "nowhere"
    outside.mkdir()
    by_flag, by_dotdir, not_a_vault, bad_flag = lv_many(
        [("--vault", populated.root, "dataset", "list", "--json"),
         ("--vault", populated.root / ".lensvault", "dataset", "list", "--json"),
         ("dataset", "list"),
         ("--vault", outside, "dataset", "list")],
        cwd=outside, env={"LENSVAULT_DIR": None})
    assert by_flag.returncode == 0 and by_dotdir.returncode == 0
    assert json.loads(by_flag.stdout) == json.loads(by_dotdir.stdout)
    assert [d["name"] for d in json.loads(by_flag.stdout)] == ["ds", "other"]
    assert not_a_vault.returncode == 3
    assert "not inside a LensVault vault" in not_a_vault.stderr and "lensvault init" in not_a_vault.stderr
    assert f"where: {outside}" in not_a_vault.stderr
    assert bad_flag.returncode == 3 and f"no LensVault vault at {outside}" in bad_flag.stderr
    # LENSVAULT_DIR is used when set, and --vault wins over it.
    env_ok, = lv_many([("dataset", "list", "--json")], cwd=outside, env={"LENSVAULT_DIR": str(populated.root)})
    env_bad, = lv_many([("--vault", populated.root, "dataset", "list", "--json")], cwd=outside,
                       env={"LENSVAULT_DIR": str(outside)})
    assert env_ok.returncode == 0 and json.loads(env_ok.stdout) == json.loads(by_flag.stdout)
    assert env_bad.returncode == 0  # --vault wins over the environment


def test_library_discovery(populated, tmp_path, monkeypatch):
    from lensvault.errors import NotFound

    monkeypatch.delenv("LENSVAULT_DIR", raising=False)
    monkeypatch.chdir(populated.root / "deep" / "er")
    with lensvault.open() as v:
        assert v.root == populated.root
    monkeypatch.chdir(tmp_path)
    with pytest.raises(NotFound) as ei:
        lensvault.open()
    assert ei.value.fix and "LENSVAULT_DIR" in ei.value.fix
    monkeypatch.setenv("LENSVAULT_DIR", str(populated.root))
    with lensvault.open() as v:
        assert v.root == populated.root


def test_a_taken_version_exits_4_and_names_the_existing_snapshot(populated, tmp_path):
    src = write_files(tmp_path / "src", {"other.txt": "x"})
    r = lv("dataset", "snapshot", "ds", src, "--version", "1.0.0", cwd=populated.root)
    assert r.returncode == 4
    snap = populated.dataset("ds@1.0.0").snapshot_id
    assert "ds@1.0.0 already exists" in r.stderr and snap[:12] in r.stderr and "fix:" in r.stderr
    r = lv("dataset", "snapshot", "ds", src, "--version", "1.0.0", "--json", cwd=populated.root)
    err = json.loads(r.stdout)
    assert r.returncode == 4 and err["error"] == "AlreadyExists" and err["existing"]["snapshot_id"] == snap


def test_init_twice_is_refused(tmp_path):
    r = lv("init", tmp_path / "v", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["root"] == str(tmp_path / "v") and len(info["vault_id"]) == 32
    r = lv("init", tmp_path / "v")
    assert r.returncode == 4 and "already exists" in r.stderr


def test_a_failed_init_leaves_nothing_behind(tmp_path):
    unreachable = "postgresql://nobody@127.0.0.1:1/lensvault"  # nothing listens on port 1
    r = lv("init", tmp_path / "v", "--catalog", unreachable)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert not (tmp_path / "v" / ".lensvault").exists()
    # A store folder the init made goes too; one that was there before (shared) stays as it was.
    r = lv("init", tmp_path / "w", "--catalog", unreachable, "--store", tmp_path / "new-store")
    assert r.returncode != 0 and not (tmp_path / "new-store").exists()
    shared = tmp_path / "shared-store"
    assert lv("init", tmp_path / "a", "--store", shared).returncode == 0
    before = sorted(p.name for p in shared.iterdir())
    r = lv("init", tmp_path / "b", "--catalog", unreachable, "--store", shared)
    assert r.returncode != 0 and sorted(p.name for p in shared.iterdir()) == before
    assert lv("init", tmp_path / "v").returncode == 0  # and the folder is free for a plain init


HEAVY = ("sqlalchemy", "pyarrow", "rich", "PIL", "numpy", "psycopg")


def test_help_is_light_and_lists_every_command():
    code = ("import sys\n"
            "from lensvault.cli._errors import run_with_errors\n"
            "from lensvault.cli.main import cli\n"
            "rc = run_with_errors(cli, ['--help'])\n"
            f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
            "print('HEAVY=' + ','.join(heavy), file=sys.stderr)\n"
            "sys.exit(rc)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "HEAVY=\n" in r.stderr, r.stderr
    for cmd in ("init", "status", "verify", "gc", "events", "dataset"):
        assert f"  {cmd}" in r.stdout
    r = subprocess.run([*LV, "dataset", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    for cmd in ("snapshot", "list", "log", "show", "diff", "checkout"):
        assert cmd in r.stdout
    r = subprocess.run([*LV, "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and lensvault.__version__ in r.stdout


def test_the_installed_entry_point_runs():
    exe = os.path.join(os.path.dirname(sys.executable), "lensvault")
    if not os.path.exists(exe):
        pytest.skip("no lensvault script beside the interpreter")
    r = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "Usage: lensvault" in r.stdout
