"""``lensvault fetch`` when a name was made here and on the remote with other content: each such
clash is reported (what, where, how to fix) with what needs the remote's record of that name;
those stay out (taken in, they would name this vault's record), everything else is fetched, and
the exit code is 4 — on an S3 bucket and a folder, over a SQLite and a PostgreSQL catalog."""

from __future__ import annotations

import json

import lensvault

from .conftest import lv, lv_json, remote_args
from .test_share import _story


def test_fetch_brings_everything_but_the_clashes_and_what_needs_them(tmp_path, remote_url, vault, bccd_dir):
    url, endpoint = remote_url
    story = _story(tmp_path / "a")
    a = story.root
    story.vault.snapshot("bccd", bccd_dir / "BCCD", version="1.0.0")  # needs nothing that clashes
    lv_json("remote", "add", "origin", *remote_args(url, endpoint), cwd=a)
    lv_json("push", "--all", cwd=a)
    story.vault.close()

    # This vault made its own demo@1.0.1 and its own config C-02 (other content, same names).
    b = vault.root
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "note.txt").write_text("made here\n")
    vault.snapshot("demo", mine, version="1.0.1")
    from lineage.conftest import git

    git("init", "-q", cwd=b)
    (b / "c02.yaml").write_text("lr: 0.5\n")
    vault.add_config(b / "c02.yaml", "C-02", uncommitted=True)
    lv_json("remote", "add", "origin", *remote_args(url, endpoint), cwd=b)

    r = lv("fetch", "--json", cwd=b)
    assert r.returncode == 4, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["ok"] is False
    by_ref = {c["ref"]: c for c in out["conflicts"]}
    assert set(by_ref) == {"demo@1.0.1", "C-02"}
    demo = by_ref["demo@1.0.1"]
    assert demo["error"] == "RemoteConflict" and demo["where"] == f"{url}/refs/datasets/demo/1.0.1"
    assert demo["here_snapshot"] == vault.dataset("demo@1.0.1").snapshot_id != demo["remote_snapshot"]
    assert "clone the remote into a new folder" in demo["fix"]
    # What needs the remote's demo@1.0.1: the runs on it, their evaluations, the models of those
    # runs, and production (which points at one of them).
    assert {story.ids["run2"], story.ids["run3"], "detector@1.1.0", "detector@1.2.0",
            "detector@production"} <= set(demo["left_out"])
    assert story.ids["run1"] not in demo["left_out"] and "detector@1.0.0" not in demo["left_out"]
    assert story.ids["run3"] in by_ref["C-02"]["left_out"] and by_ref["C-02"]["where"] == f"{url}/refs/configs/C-02"

    # Everything else came: demo@1.0.0, bccd@1.0.0, run1 and its model, config C-01.
    assert [x["version"] for x in lv_json("dataset", "log", "demo", cwd=b)] == ["1.0.1", "1.0.0"]
    assert [x["version"] for x in lv_json("dataset", "log", "bccd", cwd=b)] == ["1.0.0"]
    assert lv_json("dataset", "show", "demo@1.0.1", cwd=b)["snapshot_id"] == demo["here_snapshot"]  # still ours
    assert [m["version"] for m in lv_json("model", "list", "detector", cwd=b)] == ["1.0.0"]
    assert {c["config_id"] for c in lv_json("config", "list", cwd=b)} == {"C-01", "C-02"}
    assert lv_json("config", "show", "C-02", cwd=b)["repo_path"] == "c02.yaml"  # still ours
    runs = {x["run_id"] for x in lv_json("runs", "list", cwd=b)}
    assert story.ids["run1"] in runs and not runs & {story.ids["run2"], story.ids["run3"]}
    assert lv("model", "show", "detector@production", cwd=b).returncode == 3  # not made to point at ours

    # The human output says the same, each clash with where and fix, and what was left out.
    again = lv("fetch", cwd=b)
    assert again.returncode == 4
    text = again.stdout
    assert "CONFLICT  demo@1.0.1 here is other content than on the remote: snapshot" in text
    assert f"where: {url}/refs/datasets/demo/1.0.1" in text and "fix: a version is written once" in text
    assert "not fetched either (they need the remote's demo@1.0.1):" in text
    assert "2 conflict(s): everything else was fetched" in text
    assert "0 record(s)" in text  # the rest came the first time


def test_pull_of_a_clashing_version_is_still_refused(tmp_path, remote_url, bccd_dir):
    """``pull REF`` asks for that one thing: a clash in what it needs stops it, nothing written."""
    url, endpoint = remote_url
    a = lensvault.init(tmp_path / "a")
    a.snapshot("bccd", bccd_dir / "BCCD", version="1.0.0")
    lv_json("remote", "add", "origin", *remote_args(url, endpoint), cwd=a.root)
    lv_json("push", "--all", cwd=a.root)
    a.close()
    b = lensvault.init(tmp_path / "b")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "x.txt").write_text("x")
    b.snapshot("bccd", tmp_path / "mine", version="1.0.0")
    b.close()
    lv_json("remote", "add", "origin", *remote_args(url, endpoint), cwd=b.root)
    r = lv("pull", "bccd@1.0.0", cwd=b.root)
    assert r.returncode == 4 and "bccd@1.0.0 here is other content than on the remote: snapshot" in r.stderr
    assert "fix:" in r.stderr and "Traceback" not in r.stderr
