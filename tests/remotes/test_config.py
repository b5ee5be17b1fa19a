"""``lensvault remote add|list|remove``: where a remote is, in the vault's config, never credentials."""

from __future__ import annotations

import tomllib

import lensvault

from .conftest import lv, lv_json


def test_add_list_remove_keeps_urls_and_never_credentials(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-never-in-config")
    lensvault.init(tmp_path / "v").close()
    cwd = tmp_path / "v"
    a = lv_json("remote", "add", "team", "s3://bucket/vision/", "--endpoint-url", "http://127.0.0.1:9000",
                "--region", "eu-west-1", cwd=cwd)
    assert a == {"name": "team", "url": "s3://bucket/vision", "endpoint_url": "http://127.0.0.1:9000",
                 "region": "eu-west-1", "default": True, "note": None}  # the first remote is the default
    lv_json("remote", "add", "nfs", "/mnt/share/lv", cwd=cwd)
    lv_json("remote", "add", "gcs", "gs://b/p", "--default", cwd=cwd)
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
