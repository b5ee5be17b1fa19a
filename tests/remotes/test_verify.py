"""`lensvault verify --remote [--hash]`: every object the remote's refs need is there; --hash
re-reads them. Missing and corrupt objects are named by key, with a fix that works as printed."""

from __future__ import annotations

import pytest

import lensvault

from . import raw
from .conftest import folder_url, lv, lv_json, remote_args, single_objects
from .test_hints import hint, sh


@pytest.fixture(autouse=True)
def _single_objects(monkeypatch):
    single_objects(monkeypatch)  # these tests reach single objects behind LensVault's back


def _pushed(tmp_path, remote_url, bccd_dir):
    url, endpoint = remote_url
    v = lensvault.init(tmp_path / "a")
    v.snapshot("bccd", bccd_dir / "BCCD", version="1.0.0")
    files = sorted(v.dataset("bccd@1.0.0").files()["sha256"].to_pylist())
    record = v.dataset("bccd@1.0.0").record.manifest_oid
    v.close()
    lv_json("remote", "add", "origin", *remote_args(url, endpoint), cwd=v.root)
    lv_json("push", "--all", cwd=v.root)
    return v.root, files, record


def test_verify_remote_finds_deleted_and_corrupted_objects(tmp_path, remote_url, bccd_dir):
    url, endpoint = remote_url
    root, files, _ = _pushed(tmp_path, remote_url, bccd_dir)
    ok = lv_json("verify", "--remote", cwd=root)
    assert ok["ok"] and ok["missing"] == ok["corrupt"] == [] and ok["checked"] >= len(files) and not ok["hashed"]
    assert lv("verify", "--remote", "--hash", cwd=root).returncode == 0

    lost, shorter, flipped = files[0], files[1], files[2]
    raw.delete(url, endpoint, lost)
    raw.put(url, endpoint, shorter, b"truncated")
    raw.flip_byte(url, endpoint, flipped)

    listed = lv_json("verify", "--remote", cwd=root, ok=(1,))
    assert [m["oid"] for m in listed["missing"]] == [lost]
    assert [c["oid"] for c in listed["corrupt"]] == [shorter]  # the listing's size tells; a flipped bit does not
    assert listed["missing"][0]["needed_by"] == ["bccd@1.0.0"]
    assert listed["missing"][0]["key"].endswith(f"objects/{lost[:2]}/{lost[2:]}")

    hashed = lv_json("verify", "--remote", "--hash", cwd=root, ok=(1,))
    assert hashed["hashed"] and [c["oid"] for c in hashed["corrupt"]] == sorted([shorter, flipped])
    r = lv("verify", "--remote", "--hash", cwd=root)
    assert r.returncode == 1 and "FAILED" in r.stdout and "1 missing, 2 corrupt" in r.stdout
    for oid in (lost, shorter, flipped):
        assert f"objects/{oid[:2]}/{oid[2:]}" in r.stdout
    # The fixes, as printed: the bit-flipped object is deleted first (a push cannot tell it from a good one),
    # then one push from the vault that has them replaces all three.
    flipped_fix = next(c["fix"] for c in hashed["corrupt"] if c["oid"] == flipped)
    assert f"delete {hashed['url']}/objects/{flipped[:2]}/{flipped[2:]}" in flipped_fix
    raw.delete(url, endpoint, flipped)
    done = sh(hint(r.stdout, "lensvault push --all --check-remote"), root)
    assert done.returncode == 0, done.stderr
    again = lv("verify", "--remote", "--hash", cwd=root)
    assert again.returncode == 0 and "0 missing, 0 corrupt" in again.stdout, again.stdout


def test_verify_remote_names_a_missing_record_and_manifest(tmp_path, remote_url, bccd_dir):
    url, endpoint = remote_url
    root, _, manifest = _pushed(tmp_path, remote_url, bccd_dir)
    raw.delete(url, endpoint, manifest)
    rep = lv_json("verify", "--remote", cwd=root, ok=(1,))
    assert [(m["oid"], m["what"], m["needed_by"]) for m in rep["missing"]] == [(manifest, "manifest", ["bccd@1.0.0"])]
    ref_record = lv_json("push", "--all", "--check-remote", cwd=root)  # puts it back
    assert ref_record["objects_sent"] == 1
    assert lv_json("verify", "--remote", cwd=root)["ok"]


def test_verify_remote_checks_objects_nothing_names_only_with_hash(tmp_path, remote_url, bccd_dir):
    url, endpoint = remote_url
    root, _, _ = _pushed(tmp_path, remote_url, bccd_dir)
    stray = raw.orphan(url, endpoint, b"left by an interrupted push")
    raw.flip_byte(url, endpoint, stray)
    assert lv_json("verify", "--remote", cwd=root)["ok"]
    rep = lv_json("verify", "--remote", "--hash", cwd=root, ok=(1,))
    assert [(c["oid"], c["needed_by"]) for c in rep["corrupt"]] == [(stray, [])]
    assert "named by nothing" in lv("verify", "--remote", "--hash", cwd=root).stdout


def test_verify_remote_options(tmp_path, bccd_dir):
    v = lensvault.init(tmp_path / "a")
    v.snapshot("bccd", bccd_dir / "BCCD", version="1.0.0")
    v.close()
    assert lv("verify", "--hash", cwd=v.root).returncode == 2
    r = lv("verify", "--remote", "--repair", cwd=v.root)
    assert r.returncode == 2 and "--remote checks the whole remote" in r.stderr
    # A location nothing was pushed to is not a remote with nothing wrong.
    lv_json("remote", "add", "origin", folder_url(tmp_path / 'r'), cwd=v.root)
    r = lv("verify", "--remote", cwd=v.root)
    assert r.returncode == 3 and "not a LensVault remote" in r.stderr
    assert f"file://{tmp_path / 'r'}" in sh(hint(r.stderr, "lensvault remote list"), v.root).stdout
    r = lv("gc", "--remote", "origin", cwd=v.root)
    assert r.returncode == 3 and "not a LensVault remote" in r.stderr and not (tmp_path / "r" / "clock").exists()
    assert sh(hint(r.stderr, "lensvault push --all"), v.root).returncode == 0
    assert lv("verify", "--remote", cwd=v.root).returncode == 0
