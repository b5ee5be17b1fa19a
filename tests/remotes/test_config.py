"""``lensvault remote add|list|remove``: where a remote is, in the vault's config, never credentials."""

from __future__ import annotations

import tomllib
from pathlib import Path

import lensvault

from .conftest import lv, lv_json, s3_client


def test_add_list_remove_keeps_urls_and_never_credentials(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-never-in-config")
    lensvault.init(tmp_path / "v").close()
    cwd = tmp_path / "v"
    a = lv_json("remote", "add", "team", "s3://bucket/vision/", "--endpoint-url", "http://127.0.0.1:9000",
                "--region", "eu-west-1", "--no-check", cwd=cwd)
    assert a == {"name": "team", "url": "s3://bucket/vision", "endpoint_url": "http://127.0.0.1:9000",
                 "region": "eu-west-1", "default": True, "note": None}  # the first remote is the default
    lv_json("remote", "add", "nfs", "/mnt/share/lv", "--no-check", cwd=cwd)  # (places that are not here)
    lv_json("remote", "add", "gcs", "gs://b/p", "--default", "--no-check", cwd=cwd)
    listed = lv_json("remote", "list", cwd=cwd)
    assert [(r["name"], r["url"], r["default"]) for r in listed] == [
        ("gcs", "gs://b/p", True), ("nfs", "file:///mnt/share/lv", False), ("team", "s3://bucket/vision", False)]
    text = (cwd / ".lensvault" / "config.toml").read_text()
    assert "s3cr3t" not in text and "secret" not in text.lower() and "key" not in text.lower()
    conf = tomllib.loads(text)
    assert conf["remotes"]["team"] == {"url": "s3://bucket/vision", "endpoint_url": "http://127.0.0.1:9000",
                                       "region": "eu-west-1"}
    human = lv("remote", "list", cwd=cwd)
    assert "gcs  gs://b/p  [default]" in human.stdout
    gone = lv_json("remote", "remove", "gcs", cwd=cwd)
    assert gone["name"] == "gcs"
    assert [r["name"] for r in lv_json("remote", "list", cwd=cwd)] == ["nfs", "team"]
    # The vault still opens and works with remotes in its config.
    assert lensvault.open(cwd).datasets() == []


def test_bad_remotes_are_clear_errors(tmp_path):
    lensvault.init(tmp_path / "v").close()
    cwd = tmp_path / "v"
    (tmp_path / "r").mkdir()
    lv_json("remote", "add", "origin", f"file://{tmp_path}/r", cwd=cwd)
    cases = [
        (("remote", "add", "x", "http://example.com/b"), 2, "is not a remote URL"),
        (("remote", "add", "x", "s3://"), 2, "names no bucket"),
        (("remote", "add", "x", "file://relative/path"), 2, "not an absolute file:// URL"),
        (("remote", "add", "bad name", "s3://b"), 2, "not a valid remote name"),
        (("remote", "add", "x", "s3://b", "--endpoint-url", "minio:9000"), 2, "not an http(s) endpoint"),
        (("remote", "add", "origin", "s3://b"), 4, "already exists"),
        (("remote", "remove", "nope"), 3, "no remote named 'nope'"),
        (("push", "--all", "--remote", "nope"), 3, "no remote named 'nope'"),
        (("push",), 2, "nothing to push"),
    ]
    for args, code, what in cases:
        r = lv(*args, cwd=cwd)
        assert r.returncode == code, (args, r.stdout, r.stderr)
        assert what in r.stderr and "fix:" in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)


def test_no_default_remote_says_how_to_add_one(tmp_path):
    lensvault.init(tmp_path / "v").close()
    r = lv("push", "--all", cwd=tmp_path / "v")
    assert r.returncode == 3 and "no default remote" in r.stderr and "lensvault remote add" in r.stderr


def test_remote_add_refuses_a_location_that_cannot_be_used(tmp_path, s3_server, bucket):
    """The rule: `remote add` names only a remote that can be used now — its bucket or folder
    exists, the server answers, and a location nothing was pushed to yet can be written to —
    for s3:// and file:// alike; `--no-check` is the offline escape. A refused add leaves the config as it was."""
    lensvault.init(tmp_path / "v").close()
    cwd = tmp_path / "v"
    config = cwd / ".lensvault" / "config.toml"
    before = config.read_text()
    (tmp_path / "a-file").write_text("x")
    refused = [
        (("file:///missing/folder",), "the remote's folder /missing/folder does not exist", "mkdir -p /missing/folder"),
        ((f"file://{tmp_path}/a-file",), "is not a folder", "mkdir -p"),
        (("file:///proc",), "cannot be written to", "--no-check"),  # (a folder even root cannot write in)
        ((f"s3://no-such-bucket-{bucket}/p", "--endpoint-url", s3_server), "the bucket does not exist", "create the bucket"),
        (("s3://b/p", "--endpoint-url", "http://127.0.0.1:9"), "cannot be reached", "--no-check"),
    ]
    for args, what, fix in refused:
        r = lv("remote", "add", "x", *args, cwd=cwd)
        assert r.returncode == 9, (args, r.stdout, r.stderr)
        assert what in r.stderr and fix in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
        assert config.read_text() == before  # nothing named
    # The same locations once they exist: a new bucket prefix and a new folder are accepted, and
    # the check leaves nothing there (the location is a remote only once something is pushed).
    (tmp_path / "share").mkdir()
    lv_json("remote", "add", "nfs", f"file://{tmp_path}/share", cwd=cwd)
    lv_json("remote", "add", "s3", f"s3://{bucket}/p", "--endpoint-url", s3_server, cwd=cwd)
    assert list((tmp_path / "share").iterdir()) == []
    assert s3_client(s3_server).list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    # --no-check: named without contacting anything (offline, credentials given later).
    lv_json("remote", "add", "later", "file:///missing/folder", "--no-check", cwd=cwd)
    assert [r["name"] for r in lv_json("remote", "list", cwd=cwd)] == ["later", "nfs", "s3"]
    # A command that uses it then says the same as `remote add` did (not a folder made on this disk).
    lensvault.open(cwd).snapshot("d", _one_file(tmp_path / "data"), version="1.0.0")
    r = lv("push", "--all", "--remote", "later", cwd=cwd)
    assert r.returncode == 9 and "/missing/folder does not exist" in r.stderr and not Path("/missing").exists()


def _one_file(root: Path) -> Path:
    root.mkdir()
    (root / "a.txt").write_text("hello")
    return root
