"""``lensvault fetch`` (records, not data) and transparent fetching: a checkout, ``model pull``,
``reproduce`` and ``VisionDataset`` bring the objects they need from the default remote, hashed
before they enter the store; ``verify`` and ``gc`` know what is only on the remote."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import lensvault

from . import raw
from .conftest import CREDENTIALS, folder_url, lv, lv_json, remote_args, single_objects
from .counting_proxy import CountingProxy
from .test_hints import hint, sh


@pytest.fixture(autouse=True)
def _single_objects(monkeypatch):
    single_objects(monkeypatch)  # these tests reach single objects behind LensVault's back

IMAGE = "JPEGImages/BloodImage_00000.jpg"


def _pushed(tmp_path: Path, bccd_dir: Path, url: str, endpoint: str | None):
    """Vault a with bccd@1.0.0 (Pascal VOC), pushed; its source folder; its file objects."""
    src = tmp_path / "src"
    shutil.copytree(bccd_dir / "BCCD", src)
    a = lensvault.init(tmp_path / "a")
    a.snapshot("bccd", src, version="1.0.0", format="voc")
    lv_json("remote", "add", "origin", *remote_args(url, endpoint), cwd=a.root)
    lv_json("push", "--all", cwd=a.root)
    files = set(a.dataset("bccd@1.0.0").files(["sha256"]).column("sha256").to_pylist())
    a.close()
    return src, files


def _fetched(root: Path, url: str, endpoint: str | None) -> dict:
    lensvault.init(root).close()
    lv_json("remote", "add", "origin", *remote_args(url, endpoint), cwd=root)
    return lv_json("fetch", cwd=root)


def _missing(root: Path, oids) -> set[str]:
    with lensvault.open(root) as v:
        return set(v.store.missing(sorted(oids)))


def _oid(src: Path, rel: str) -> str:
    return hashlib.sha256((src / rel).read_bytes()).hexdigest()


def _same_tree(a: Path, b: Path) -> None:
    for p in a.rglob("*"):
        if p.is_file():
            assert (b / p.relative_to(a)).read_bytes() == p.read_bytes(), p


def _store_tmp(root: Path) -> list[str]:
    return os.listdir(root / ".lensvault" / "objects" / "tmp")


def test_fetch_brings_records_not_data_and_a_checkout_fetches_the_data(tmp_path, remote_url, bccd_dir):
    url, endpoint = remote_url
    src, files = _pushed(tmp_path, bccd_dir, url, endpoint)
    b = tmp_path / "b"
    out = _fetched(b, url, endpoint)
    assert out["added"]["dataset_versions"] == 1 and out["objects_on_remote"] == len(files)
    # The catalog knows the version as vault a does; its files are still on the remote.
    assert lv_json("dataset", "list", cwd=b) == lv_json("dataset", "list", cwd=tmp_path / "a")
    assert lv_json("dataset", "show", "bccd@1.0.0", cwd=b)["snapshot_id"] == \
        lv_json("dataset", "show", "bccd@1.0.0", cwd=tmp_path / "a")["snapshot_id"]
    assert _missing(b, files) == files
    assert (b / "data" / "manifests" / "bccd" / "1.0.0.json").read_bytes() == \
        (tmp_path / "a" / "data" / "manifests" / "bccd" / "1.0.0.json").read_bytes()
    again = lv_json("fetch", cwd=b)
    assert again["records"] == 0 and again["objects_fetched"] == 0

    r = lv("dataset", "checkout", "bccd@1.0.0", str(tmp_path / "out"), "--json", cwd=b)
    assert r.returncode == 0, r.stdout + r.stderr
    _same_tree(src, tmp_path / "out")
    assert _missing(b, files) == set()
    report = lv_json("verify", cwd=b)
    assert report["ok"] and report["missing"] == [] and report["remote_only"] == []


def test_checkout_of_one_image_of_a_fetched_version_is_at_most_three_requests(tmp_path, s3_server, bucket, bccd_dir,
                                                                                monkeypatch):
    monkeypatch.delenv("LENSVAULT_PACK_BELOW")  # the images travel in packs, as they do for users
    url = f"s3://{bucket}/team/vision"
    src, files = _pushed(tmp_path, bccd_dir, url, s3_server)
    proxy = CountingProxy(s3_server)
    try:
        b = tmp_path / "b"
        _fetched(b, url, proxy.url)
        proxy.reset()
        r = lv("dataset", "checkout", "bccd@1.0.0", str(tmp_path / "one"), "--path", IMAGE, cwd=b)
        assert r.returncode == 0, r.stdout + r.stderr
        requests = list(proxy.requests)
    finally:
        proxy.close()
    oid = _oid(src, IMAGE)
    # The target is <= 3 requests. A small image travels in a pack: the listing of the
    # packs (only indexes the listing shows are trusted), at most its index (unless cached), and
    # one ranged GET of the pack. No ref, journal or record is read.
    assert len(requests) <= 3 and all(m == "GET" for m, _ in requests), requests
    assert requests[-1][1].startswith(f"/{bucket}/team/vision/packs/") and requests[-1][1].endswith(".pack"), requests
    assert not any("/refs/" in p or "/journal/" in p or "/objects/" in p for _, p in requests), requests
    assert sorted(str(p.relative_to(tmp_path / "one")) for p in (tmp_path / "one").rglob("*") if p.is_file()) == \
        [".lensvault-checkout.json", IMAGE]
    assert (tmp_path / "one" / IMAGE).read_bytes() == (src / IMAGE).read_bytes()
    assert _missing(b, files) == files - {oid}  # only what the checkout needed came
    status = lv_json("status", str(tmp_path / "one"), cwd=b)
    assert status["clean"] and status["unchanged"] == 1, status


def test_a_checkout_in_batches_fetches_what_it_selects_once_it_meets_a_missing_object(tmp_path, bccd_dir,
                                                                                      monkeypatch):
    """A checkout looks nothing up in advance: the first missing object sends it to fetch every
    object of its selection the store lacks (a pass over the batches), and it starts over once."""
    from lensvault.datasets import listing

    url = folder_url(tmp_path / "remote")
    src, files = _pushed(tmp_path, bccd_dir, url, None)
    b = tmp_path / "b"
    _fetched(b, url, None)
    monkeypatch.setattr(listing, "BATCH_ROWS", 7)  # (BCCD's 47 images and their labels: many batches)
    notes = sorted(str(p.relative_to(src)) for p in (src / "Annotations").rglob("*.xml"))
    with lensvault.open(b) as v:
        some = v.checkout("bccd@1.0.0", tmp_path / "some", paths=["Annotations/"])
        assert some.files == len(notes) > 7
        assert _missing(b, files) == files - {_oid(src, rel) for rel in notes}  # only what it selected came
        whole = v.checkout("bccd@1.0.0", tmp_path / "all", link="hardlink")
    _same_tree(src, tmp_path / "all")
    assert whole.files == sum(1 for p in src.rglob("*") if p.is_file()) and _missing(b, files) == set()


def test_partial_checkout_selects_files_folders_and_globs(tmp_path, bccd_dir):
    """--path is a file, a folder (DIR/) or a glob; a pattern that selects nothing is refused."""
    src = tmp_path / "src"
    shutil.copytree(bccd_dir / "BCCD", src)
    v = lensvault.init(tmp_path / "v")
    v.snapshot("bccd", src, version="1.0.0")
    want = sorted(str(p.relative_to(src)) for p in (src / "Annotations").glob("BloodImage_0000*.xml"))
    r = lv("dataset", "checkout", "bccd@1.0.0", str(tmp_path / "g"), "--path", "Annotations/BloodImage_0000*.xml",
           "--path", "ImageSets/", "--json", cwd=v.root)
    assert r.returncode == 0, r.stderr
    got = sorted(str(p.relative_to(tmp_path / "g")) for p in (tmp_path / "g").rglob("*")
                 if p.is_file() and p.name != ".lensvault-checkout.json")
    sets = sorted(str(p.relative_to(src)) for p in (src / "ImageSets").rglob("*") if p.is_file())
    assert got == sorted(want + sets) and json.loads(r.stdout)["files"] == len(got)
    bad = lv("dataset", "checkout", "bccd@1.0.0", str(tmp_path / "none"), "--path", "JPEGImages/nope*.png", cwd=v.root)
    assert bad.returncode == 3 and "no file of bccd@1.0.0 matches 'JPEGImages/nope*.png'" in bad.stderr
    assert not (tmp_path / "none").exists()
    v.close()


def test_verify_and_gc_after_fetch_know_what_is_only_on_the_remote(tmp_path, bccd_dir):
    url = folder_url(tmp_path / 'remote')
    src, files = _pushed(tmp_path, bccd_dir, url, None)
    b = tmp_path / "b"
    _fetched(b, url, None)
    report = lv_json("verify", cwd=b)
    assert report["ok"] and report["missing"] == [] and report["corrupt"] == []
    assert {m["oid"] for m in report["remote_only"]} == files
    assert {m["remote"] for m in report["remote_only"]} == {"origin"}
    text = lv("verify", cwd=b)
    assert text.returncode == 0 and f"{len(files)} object(s) are only on remote origin" in text.stdout, text.stdout
    assert f"({len(files)} of them only on a remote, not read here)" in text.stdout, text.stdout  # not "checked"

    gc = lv_json("gc", "--grace", "0", "--force", "--yes", cwd=b)
    assert gc["plan"]["objects"] == 0, gc  # the records, manifest and tables are all needed
    # After gc the version still reads, and a checkout still fetches what it needs.
    assert lv_json("dataset", "show", "bccd@1.0.0", cwd=b)["version"] == "1.0.0"
    r = lv("dataset", "checkout", "bccd@1.0.0", str(tmp_path / "one"), "--path", IMAGE, cwd=b)
    assert r.returncode == 0, r.stderr
    assert {m["oid"] for m in lv_json("verify", cwd=b)["remote_only"]} == files - {_oid(src, IMAGE)}

    # `pull` brings the rest, and from then on a missing object is lost, not "on the remote".
    lv_json("pull", "bccd@1.0.0", cwd=b)
    with lensvault.open(b) as v:
        lost = _oid(src, IMAGE)
        os.unlink(v.store.local_path(lost))
    after = lv_json("verify", cwd=b, ok=(1,))
    assert [m["oid"] for m in after["missing"]] == [lost] and after["remote_only"] == []


def test_no_remote_no_fetch_and_an_object_the_remote_lacks_are_clear_errors(tmp_path, bccd_dir):
    url = folder_url(tmp_path / 'remote')
    src, files = _pushed(tmp_path, bccd_dir, url, None)
    b = tmp_path / "b"
    _fetched(b, url, None)
    dest = tmp_path / "out"

    off = lv("dataset", "checkout", "bccd@1.0.0", str(dest), "--no-fetch", cwd=b)
    assert off.returncode == 3 and f"{len(files)} object(s) of bccd@1.0.0 are only on remote origin" in off.stderr
    assert "--no-fetch" in off.stderr and "lensvault pull bccd@1.0.0" in off.stderr and not dest.exists()

    oid = _oid(src, IMAGE)
    there = tmp_path / "remote" / "objects" / oid[:2] / oid[2:]
    kept = there.read_bytes()
    there.unlink()
    gone = lv("dataset", "checkout", "bccd@1.0.0", str(dest), "--path", IMAGE, cwd=b)
    assert gone.returncode == 3 and "Traceback" not in gone.stderr, gone.stderr
    assert f"object {oid[:12]}… of bccd@1.0.0 is neither in this vault's store nor on remote origin" in gone.stderr
    assert str(there) in gone.stderr and "push --all --check-remote" in gone.stderr and not dest.exists()
    there.write_bytes(kept)

    lv_json("remote", "remove", "origin", cwd=b)
    none = lv("dataset", "checkout", "bccd@1.0.0", str(dest), "--path", IMAGE, cwd=b)
    assert none.returncode == 3 and "has no default remote to fetch them from" in none.stderr
    assert f"lensvault remote add origin {url} --default" in none.stderr and not dest.exists()
    assert oid in _missing(b, files) and _store_tmp(b) == []


def _corrupt_on_remote(url: str, endpoint: str | None, oid: str) -> None:
    raw.put_key(url, endpoint, f"objects/{oid[:2]}/{oid[2:]}", b"not the image")


def test_a_corrupt_remote_object_is_named_and_not_stored(tmp_path, remote_url, bccd_dir):
    url, endpoint = remote_url
    src, files = _pushed(tmp_path, bccd_dir, url, endpoint)
    b = tmp_path / "b"
    _fetched(b, url, endpoint)
    oid = _oid(src, IMAGE)
    _corrupt_on_remote(url, endpoint, oid)
    dest = tmp_path / "out"
    r = lv("dataset", "checkout", "bccd@1.0.0", str(dest), cwd=b)
    assert r.returncode == 5 and "Traceback" not in r.stderr, r.stderr
    assert f"object {oid[:12]}… of bccd@1.0.0 on remote origin is corrupt" in r.stderr and "not stored" in r.stderr
    assert f"objects/{oid[:2]}/{oid[2:]}" in r.stderr
    assert oid in _missing(b, files) and not dest.exists() and _store_tmp(b) == []
    assert lv("verify", cwd=b).returncode == 0  # nothing damaged entered the store


def test_ctrl_c_during_an_automatic_fetch_leaves_nothing_half_written(tmp_path, s3_server, bucket, bccd_dir):
    url = f"s3://{bucket}/team/vision"
    src, files = _pushed(tmp_path, bccd_dir, url, s3_server)
    proxy = CountingProxy(s3_server)
    try:
        b = tmp_path / "b"
        _fetched(b, url, proxy.url)
        oid = _oid(src, IMAGE)
        proxy.hold(f"objects/{oid[:2]}/{oid[2:]}")
        scratch = tmp_path / "tmpdir"
        scratch.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("LENSVAULT_")} | CREDENTIALS
        env["TMPDIR"] = str(scratch)  # where the download stages: must be empty afterwards
        dest = tmp_path / "out"
        proc = subprocess.Popen([sys.executable, "-m", "lensvault.cli.main", "dataset", "checkout", "bccd@1.0.0",
                                 str(dest)], cwd=b, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proxy.held.wait(120), "the held download never started"
        proc.send_signal(signal.SIGINT)
        time.sleep(5)  # let the Ctrl-C land while that download is still in flight (no assert on time)
        proxy.release()
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 130 and "Traceback" not in err, err
        assert not dest.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
        assert list((b / ".lensvault" / "staging").glob("*")) == []
        assert list(scratch.iterdir()) == [] and _store_tmp(b) == []
        assert oid in _missing(b, files)
        assert lv("verify", cwd=b).returncode == 0  # whatever came is whole
        r = lv("dataset", "checkout", "bccd@1.0.0", str(dest), cwd=b)  # and doing it again completes
        assert r.returncode == 0, r.stderr
    finally:
        proxy.close()
    _same_tree(src, dest)


def _story(root: Path):
    from lineage.conftest import BIN, GIT_ENV, _build_story

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", os.pathsep.join([BIN, os.environ.get("PATH", "")]))
        for k, v in GIT_ENV.items():
            mp.setenv(k, v)
        return _build_story(root)


def test_vision_dataset_model_pull_and_reproduce_fetch_what_they_need(tmp_path):
    from lensvault.torch import VisionDataset
    from lineage.conftest import _env, git

    url = folder_url(tmp_path / 'remote')
    story = _story(tmp_path / "a")
    lv_json("remote", "add", "origin", url, cwd=story.root)
    lv_json("push", "--all", cwd=story.root)
    a = story.vault
    images = a.dataset("demo@1.0.1").images()
    split = dict(zip(images.column("sha256").to_pylist(), images.column("split").to_pylist()))
    weights = {f["sha256"] for f in a.model("detector@1.2.0").files}
    story.vault.close()

    b = tmp_path / "b"
    git("clone", "-q", str(story.root), str(b), cwd=tmp_path)
    out = _fetched(b, url, None)
    assert out["added"]["model_versions"] == 3 and "detector@production" in out["aliases_created"]
    assert _missing(b, split) == set(split) and _missing(b, weights) == weights

    with lensvault.open(b) as v:
        ds = VisionDataset("demo@1.0.1", split="val", vault=v)
        val = {s for s, sp in split.items() if sp == "val"}
        assert len(ds) == len(val) and ds.load_image(0).size == tuple(ds.target(0)["size"])
        assert _missing(b, split) == set(split) - val  # the split it reads, nothing more

    r = lv("model", "pull", "detector@1.2.0", str(tmp_path / "model"), "--json", cwd=b)
    assert r.returncode == 0, r.stderr
    assert _missing(b, weights) == set()
    for f in json.loads(r.stdout)["files"]:
        assert hashlib.sha256((tmp_path / "model" / f["name"]).read_bytes()).hexdigest() == f["sha256"]

    with lensvault.open(b) as v:
        data = v.dataset(v.model("detector@production").dataset).object_ids()
    assert _missing(b, data)  # what the VisionDataset did not need is still on the remote
    rep = lv("reproduce", "detector@production", "--json", cwd=b, env=_env())
    assert rep.returncode == 0, rep.stdout + rep.stderr
    assert json.loads(rep.stdout)["verdict"] == "PASS"
    assert _missing(b, data) == set()
    report = lv_json("verify", cwd=b)
    assert report["ok"] and report["missing"] == []

    # An alias a vault moved is its own: a later fetch names the difference, the hint follows the remote.
    c = tmp_path / "c"
    _fetched(c, url, None)
    lv_json("model", "promote", "detector@1.0.0", "production", "--reason", "try the first", cwd=c)
    again = lv("fetch", cwd=c)
    assert again.returncode == 0 and "detector@production is 1.0.0 here, 1.2.0 on origin" in again.stdout, again.stdout
    assert sh(hint(again.stdout, "lensvault pull detector@production"), c).returncode == 0
    assert lv_json("model", "show", "detector@production", cwd=c)["version"] == "1.2.0"


def test_fetch_reports_a_version_made_here_with_other_content_and_leaves_nothing_of_it(tmp_path, bccd_dir):
    url = folder_url(tmp_path / 'remote')
    src, _files = _pushed(tmp_path, bccd_dir, url, None)
    mine = tmp_path / "mine"
    shutil.copytree(src, mine)
    (mine / "extra.txt").write_text("made here\n")
    b = lensvault.init(tmp_path / "b")
    b.snapshot("bccd", mine, version="1.0.0")
    b.close()
    lv_json("remote", "add", "origin", url, cwd=tmp_path / "b")
    before = lv_json("dataset", "list", cwd=tmp_path / "b")
    def ledger():  # (the other vault's event batches come: history; tests/remotes/test_events_travel.py)
        return sorted(p.name for p in (tmp_path / "b" / ".lensvault" / "objects" / "ledgers").rglob("*")
                      if p.is_file() and "-events-" not in p.name)

    before_ledger = ledger()
    r = lv("fetch", cwd=tmp_path / "b")
    assert r.returncode == 4 and "CONFLICT  bccd@1.0.0 here is other content than on the remote" in r.stdout, r.stdout
    assert lv_json("dataset", "list", cwd=tmp_path / "b") == before
    assert ledger() == before_ledger  # no record, ref or marker of it was added (it was the only version)

    # The same content made here (another vault snapshotted the same folder): fine, and said so.
    c = lensvault.init(tmp_path / "c")
    c.snapshot("bccd", src, version="1.0.0", format="voc")
    c.close()
    lv_json("remote", "add", "origin", url, cwd=tmp_path / "c")
    out = lv_json("fetch", cwd=tmp_path / "c")
    assert out["same_content"] == ["refs/datasets/bccd/1.0.0"] and "dataset_versions" not in out["added"]
    assert lv_json("verify", cwd=tmp_path / "c")["remote_only"] == []


def test_export_and_check_of_a_version_without_annotations_refuse_before_fetching_anything(tmp_path, bccd_dir):
    """They fetched (and listed) every file of the version first, then said it had no annotations."""
    url = folder_url(tmp_path / "remote")
    a = lensvault.init(tmp_path / "a")
    a.snapshot("plain", bccd_dir / "BCCD", version="1.0.0")  # files only
    files = set(a.dataset("plain@1.0.0").files(["sha256"]).column("sha256").to_pylist())
    lv_json("remote", "add", "origin", url, cwd=a.root)
    lv_json("push", "--all", cwd=a.root)
    a.close()
    b = tmp_path / "b"
    _fetched(b, url, None)
    for args, said in ((["export", "plain@1.0.0", str(tmp_path / "out"), "--format", "coco"], "has no annotations"),
                       (["check", "plain@1.0.0"], "has no images table")):
        r = lv("dataset", *args, cwd=b)
        assert r.returncode == 2 and f"plain@1.0.0 {said}" in r.stderr and "--format" in r.stderr, r.stderr
    assert _missing(b, files) == files and not (tmp_path / "out").exists()


def test_check_and_export_of_a_fetched_version_fetch_its_images_and_never_pass_on_unread_ones(tmp_path, bccd_dir):
    """`dataset check` on a fetched version read no image and said "no train/test leak" with exit
    0 — a CI gate that passes after checking nothing. Reading commands fetch what they read;
    a check that could not read an image is incomplete (exit 1), whatever the reason."""
    url = folder_url(tmp_path / 'remote')
    _, files = _pushed(tmp_path, bccd_dir, url, None)
    b = tmp_path / "b"
    _fetched(b, url, None)
    refused = lv("dataset", "check", "bccd@1.0.0", "--no-fetch", cwd=b)
    assert refused.returncode == 3 and "only on remote origin" in refused.stderr, refused.stdout + refused.stderr
    checked = lv_json("dataset", "check", "bccd@1.0.0", cwd=b)
    assert checked["unreadable"] == [] and checked["images"] == 47 and _missing(b, files) == set()

    c = tmp_path / "c"
    _fetched(c, url, None)
    out = tmp_path / "exported"
    assert lv("dataset", "export", "bccd@1.0.0", str(out), "--format", "coco", "--no-fetch", cwd=c).returncode == 3
    assert not out.exists()
    done = lv_json("dataset", "export", "bccd@1.0.0", str(out), "--format", "coco", cwd=c)
    assert done["images"] == 47 and _missing(c, files) == set()

    # An image lost from a vault with no remote: named, and the check is not a pass.
    d = lensvault.init(tmp_path / "d")
    d.snapshot("bccd", bccd_dir / "BCCD", version="1.0.0", format="voc")
    d.store.delete(_oid(bccd_dir / "BCCD", IMAGE))
    d.close()
    r = lv("dataset", "check", "bccd@1.0.0", cwd=tmp_path / "d")
    assert r.returncode == 1 and "incomplete" in r.stdout and "unreadable images: 1" in r.stdout, r.stdout + r.stderr
