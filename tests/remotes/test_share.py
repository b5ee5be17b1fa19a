"""Two vaults on this machine share dataset versions, runs and models through a remote — a bucket
on a real S3-compatible server over HTTP, and a folder (file://) — and the second reproduces."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import lensvault

from .conftest import CREDENTIALS, lv, lv_json, remote_args


def _project_env() -> dict:
    from lineage.conftest import _env

    return _env()


def _story(root: Path):
    import os

    from lineage.conftest import BIN, GIT_ENV, _build_story

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", os.pathsep.join([BIN, os.environ.get("PATH", "")]))
        for k, v in GIT_ENV.items():
            mp.setenv(k, v)
        return _build_story(root)


def test_share_dataset_run_model_then_reproduce_passes(tmp_path, remote_url):
    from lineage.conftest import git

    url, endpoint = remote_url
    story = _story(tmp_path / "a")
    a, b = story.root, tmp_path / "b"
    env = _project_env()
    lv_json("remote", "add", "origin", *remote_args(url, endpoint), cwd=a)
    pushed = lv_json("push", "--all", cwd=a)
    assert {"refs/datasets/demo/1.0.0", "refs/datasets/demo/1.0.1", "refs/models/detector/1.2.0",
            "refs/configs/C-02"} <= set(pushed["refs_created"])
    assert pushed["aliases_moved"] == ["detector@production"] and pushed["objects_sent"] > 50

    git("clone", "-q", str(a), str(b), cwd=tmp_path)  # the code travels by git; the data by the remote
    cloned = lv_json("clone", *remote_args(url, endpoint), str(b), cwd=tmp_path)
    assert cloned["restored"]["dataset_versions"] == 2 and cloned["restored"]["model_versions"] == 3
    assert not cloned["unproven"]
    # The second vault lists what the first one does.
    for args in (("dataset", "list"), ("model", "list"), ("runs", "list"), ("evals",), ("config", "list")):
        assert lv_json(*args, cwd=b, env=env) == lv_json(*args, cwd=a, env=env), args
    assert lv_json("remote", "list", cwd=b)[0]["url"] == url
    # The history came too: every event of the first vault (promotes, the rollback-free story's
    # registrations, runs, snapshots), by whom and when, in the clone's `lensvault events`.
    def facts(root):
        return {(e["at"], e["actor"], e["action"], e["subject"]) for e in lv_json("events", cwd=root, env=env)}

    theirs = facts(a)
    assert {"model.promote", "dataset.version.create"} <= {f[2] for f in theirs}
    assert theirs <= facts(b)
    r = lv("verify", cwd=b)
    assert r.returncode == 0 and "0 missing, 0 corrupt" in r.stdout, r.stdout + r.stderr

    rep = lv("reproduce", "detector@production", "--json", cwd=b, env=env)
    assert rep.returncode == 0, rep.stdout + rep.stderr
    out = json.loads(rep.stdout)
    assert out["verdict"] == "PASS" and out["target"] == "detector@1.2.0"
    story.vault.close()


def _vault_with(root: Path, bccd_dir: Path, versions=("1.0.0",)):
    v = lensvault.init(root)
    v.snapshot("bccd", bccd_dir / "BCCD", version=versions[0])
    return v


def test_push_sends_the_difference_of_manifests_then_nothing(tmp_path, remote_url, bccd_dir):
    url, endpoint = remote_url
    src = tmp_path / "src"
    shutil.copytree(bccd_dir / "BCCD", src)
    v = lensvault.init(tmp_path / "a")
    v.snapshot("bccd", src, version="1.0.0")
    lv_json("remote", "add", "origin", *remote_args(url, endpoint), cwd=v.root)
    first = lv_json("push", "bccd@1.0.0", cwd=v.root)
    assert first["objects_sent"] == len(v.dataset("bccd@1.0.0").object_ids())
    img = min((src / "JPEGImages").iterdir())
    img.write_bytes(img.read_bytes() + b"\0changed")
    v.snapshot("bccd", src, version="1.0.1")
    second = lv_json("push", "bccd@1.0.1", cwd=v.root)
    # The changed image, the tables, the snapshot and the manifest; 1.0.0's ref vouches for the rest.
    new = v.dataset("bccd@1.0.1").object_ids() - v.dataset("bccd@1.0.0").object_ids()
    assert second["objects_sent"] == len(new) and not second["listed"]
    assert second["refs_created"] == ["refs/datasets/bccd/1.0.1"]
    again = lv_json("push", "--all", cwd=v.root)
    assert again["objects_sent"] == 0 and again["refs_created"] == [] and not again["listed"]
    assert again["records_present"] == 2 and again["objects_present"] == 0
    v.close()


def test_a_push_with_nothing_new_opens_no_catalog_and_reads_no_table(tmp_path, remote_url, bccd_dir):
    """The remote's journal vouches for every record pushed before: with nothing new, push reads
    the ledger from the store and the journal listing, nothing else (no SQLAlchemy, no pyarrow)."""
    url, endpoint = remote_url
    v = _vault_with(tmp_path / "a", bccd_dir)
    v.close()
    lv_json("remote", "add", "origin", *remote_args(url, endpoint), cwd=tmp_path / "a")
    n = lv_json("push", "--all", cwd=tmp_path / "a")["records_sent"]
    code = ("import sys\n"
            "from lensvault.cli._errors import run_with_errors\n"
            "from lensvault.cli.main import cli\n"
            "rc = run_with_errors(cli, ['push', '--all'])\n"
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'pyarrow', 'sqlalchemy', 'numpy'})\n"
            "print('HEAVY=' + ','.join(heavy), file=sys.stderr)\n"
            "sys.exit(rc)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LENSVAULT_")} | CREDENTIALS
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path / "a", env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "HEAVY=\n" in r.stderr, r.stderr
    assert "Nothing new to push to origin" in r.stdout and f"all {n} record(s) are there already" in r.stdout


def test_pull_a_version_into_another_vault_brings_its_parent_and_checks_out(tmp_path, remote_url, bccd_dir):
    url, endpoint = remote_url
    src = tmp_path / "src"
    shutil.copytree(bccd_dir / "BCCD", src)
    a = lensvault.init(tmp_path / "a")
    a.snapshot("bccd", src, version="1.0.0")
    (src / "extra.txt").write_text("more\n")
    a.snapshot("bccd", src, version="1.1.0")
    lv_json("remote", "add", "origin", *remote_args(url, endpoint), cwd=a.root)
    lv_json("push", "bccd@1.1.0", cwd=a.root)

    b = lensvault.init(tmp_path / "b")
    lv_json("remote", "add", "origin", *remote_args(url, endpoint), cwd=b.root)
    pulled = lv_json("pull", "bccd@1.1.0", cwd=b.root)
    assert pulled["added"]["dataset_versions"] == 2 and pulled["objects_fetched"] > 0
    assert [x["version"] for x in lv_json("dataset", "log", "bccd", cwd=b.root)] == \
        [x["version"] for x in lv_json("dataset", "log", "bccd", cwd=a.root)]
    r = lv("dataset", "checkout", "bccd@1.1.0", str(tmp_path / "out"), cwd=b.root)
    assert r.returncode == 0, r.stderr
    for p in src.rglob("*"):
        if p.is_file():
            assert hashlib.sha256(p.read_bytes()).digest() == \
                hashlib.sha256((tmp_path / "out" / p.relative_to(src)).read_bytes()).digest()
    assert (b.root / "data" / "manifests" / "bccd" / "1.1.0.json").read_bytes() == \
        (a.root / "data" / "manifests" / "bccd" / "1.1.0.json").read_bytes()
    again = lv_json("pull", "bccd@1.1.0", cwd=b.root)
    assert again["records"] == 0 and again["objects_fetched"] == 0
    assert lv("verify", cwd=b.root).returncode == 0
    a.close()
    b.close()


def test_two_machines_promote_at_once_one_wins_the_other_pulls_and_decides_again(tmp_path, remote_url):
    import os
    import subprocess
    import sys

    from .conftest import CREDENTIALS

    url, endpoint = remote_url
    story = _story(tmp_path / "a")
    lv_json("remote", "add", "origin", *remote_args(url, endpoint), cwd=story.root)
    lv_json("push", "--all", cwd=story.root)
    b, c = tmp_path / "b", tmp_path / "c"
    for d in (b, c):
        lv_json("clone", *remote_args(url, endpoint), str(d), cwd=tmp_path)
    lv_json("model", "promote", "detector@1.1.0", "production", "--reason", "b prefers 1.1", cwd=b)
    lv_json("model", "promote", "detector@1.0.0", "production", "--reason", "c prefers 1.0", cwd=c)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LENSVAULT_")} | CREDENTIALS
    procs = {d: subprocess.Popen([sys.executable, "-m", "lensvault.cli.main", "push", "--all", "--json"], cwd=d,
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for d in (b, c)}
    done = {d: (p.wait(), p.stdout.read(), p.stderr.read()) for d, p in procs.items()}
    assert sorted(code for code, _, _ in done.values()) == [0, 4], done
    winner = next(d for d, (code, _, _) in done.items() if code == 0)
    loser = c if winner == b else b
    assert json.loads(done[winner][1])["aliases_moved"] == ["detector@production"]
    assert "moved on the remote by someone else" in done[loser][2] and "lensvault pull detector@production" in done[loser][2]
    won_version = "1.1.0" if winner == b else "1.0.0"
    # The loser runs the printed hints: fetch (sees the winner's choice), decide again, push again.
    from .test_hints import hint, sh

    pulled = sh(hint(done[loser][2], "lensvault pull") + " --json", loser)
    assert pulled.returncode == 0 and json.loads(pulled.stdout)["aliases_moved"] == ["detector@production"]
    assert lv_json("model", "show", "detector@production", cwd=loser)["version"] == won_version
    promoted = sh(hint(done[loser][2], "lensvault model promote", {"…": "detector@1.2.0 production"}), loser)
    assert promoted.returncode == 0, promoted.stderr
    assert lv_json("push", "--all", cwd=loser)["aliases_moved"] == ["detector@production"]
    fresh = tmp_path / "d"
    lv_json("clone", *remote_args(url, endpoint), str(fresh), cwd=tmp_path)
    assert lv_json("model", "show", "detector@production", cwd=fresh)["version"] == "1.2.0"
    story.vault.close()
