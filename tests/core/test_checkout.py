"""Checkout: all or nothing, never outside DEST, never over existing files.

``ds`` is a version on each object store (``store_vault``); link tests need local files."""

from __future__ import annotations

import json
import os
import stat

import pytest
from _lvtest import damage_object, lose_object, write_files

from lensvault.errors import InputError, IntegrityError, ObjectMissing, UsageError

FILES = {"a.txt": "alpha", "img/b.jpg": b"\xff\xd8\xff" + b"\x00" * 100, "img/deep/c.bin": os.urandom(300)}


@pytest.fixture
def ds(store_vault, tmp_path):
    src = write_files(tmp_path / "src", FILES)
    return store_vault.snapshot("ds", src, version="1.0.0")


@pytest.fixture
def local_ds(sqlite_vault, tmp_path):
    src = write_files(tmp_path / "src", FILES)
    return sqlite_vault.snapshot("ds", src, version="1.0.0")


def _tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_checkout_writes_every_file_and_a_marker(ds, tmp_path):
    res = ds.checkout(tmp_path / "out", link="copy")
    out = tmp_path / "out"
    for rel, data in FILES.items():
        want = data.encode() if isinstance(data, str) else data
        assert (out / rel).read_bytes() == want
        assert stat.S_IMODE((out / rel).stat().st_mode) == 0o644  # copies are the user's to edit
    marker = json.loads((out / ".lensvault-checkout.json").read_text())
    assert marker["ref"] == "ds@1.0.0" and marker["snapshot_id"] == ds.snapshot_id
    assert res.to_dict() == {"ref": "ds@1.0.0", "dest": str(out), "files": 3,
                             "bytes": sum(len(v) for v in FILES.values()), "link": "copy"}
    assert [p for p in os.listdir(tmp_path) if "lensvault-tmp" in p] == []


def test_the_marker_keeps_the_patterns_of_a_partial_checkout_and_none_for_a_whole_one(local_ds, tmp_path):
    """The marker names what ``--path`` selected by, not every file: it was every path of every
    checkout, and ``status`` matched each row of the version against each of them (a million-file
    checkout's status ran for tens of minutes)."""
    vault = local_ds.vault
    vault.checkout("ds@1.0.0", tmp_path / "all")
    marker = json.loads((tmp_path / "all" / ".lensvault-checkout.json").read_text())
    assert "paths" not in marker
    vault.checkout("ds@1.0.0", tmp_path / "some", paths=["img/*.jpg", "img/deep/"])
    marker = json.loads((tmp_path / "some" / ".lensvault-checkout.json").read_text())
    assert marker["paths"] == ["img/*.jpg", "img/deep/"]
    for folder, files in (("all", 3), ("some", 2)):
        st = vault.status(None, tmp_path / folder)
        assert st.clean and st.unchanged == files, st
    (tmp_path / "some" / "img" / "deep" / "new.bin").write_bytes(b"new")  # under a selected folder: added
    (tmp_path / "some" / "a.txt").write_bytes(b"alpha")  # outside the selection: added as well
    assert vault.status(None, tmp_path / "some").added == ["a.txt", "img/deep/new.bin"]


def test_checkout_into_an_existing_empty_folder(ds, tmp_path):
    (tmp_path / "empty").mkdir()
    ds.checkout(tmp_path / "empty")
    assert (tmp_path / "empty" / "a.txt").read_text() == "alpha"


def test_hardlink_checkout_shares_read_only_objects(local_ds, sqlite_vault, tmp_path):
    ds = local_ds
    ds.checkout(tmp_path / "out", link="hardlink")
    p = tmp_path / "out" / "a.txt"
    oid = dict(zip(ds.files()["path"].to_pylist(), ds.files()["sha256"].to_pylist()))["a.txt"]
    assert p.stat().st_ino == sqlite_vault.store.oid_to_path(oid).stat().st_ino
    assert stat.S_IMODE(p.stat().st_mode) == 0o444


@pytest.mark.parametrize("content", ["file", "dir"])
def test_a_non_empty_dest_is_refused_and_left_alone(ds, tmp_path, content):
    dest = tmp_path / "dest"
    if content == "dir":
        write_files(dest, {"mine.txt": "keep me"})
    else:
        dest.write_text("a file, not a folder")
    before = _tree(tmp_path)
    with pytest.raises(InputError) as ei:
        ds.checkout(dest)
    e = ei.value
    assert e.where == str(dest) and "never overwrites" in e.fix
    assert _tree(tmp_path) == before
    if content == "dir":
        assert (dest / "mine.txt").read_text() == "keep me"


@pytest.mark.parametrize("evil", ["../evil.txt", "a/../../evil.txt", "/tmp/lensvault-evil.txt", "./x", "a//b"])
def test_a_manifest_path_escaping_dest_is_an_integrity_error(store_vault, tmp_path, evil):
    from lensvault.datasets import files_table
    from lensvault.datasets.snapshot import commit_version

    sqlite_vault = store_vault

    oid = sqlite_vault.store.put_bytes(b"owned")
    ok_oid = sqlite_vault.store.put_bytes(b"fine")
    table = files_table.build(["ok.txt", evil], [4, 5], [ok_oid, oid], ["text/plain"] * 2, [None] * 2, [None] * 2)
    commit_version(sqlite_vault, name="evil", version="1.0.0", files=table)
    work = tmp_path / "work"
    work.mkdir()
    dest = work / "dest"
    with pytest.raises(IntegrityError) as ei:
        sqlite_vault.checkout("evil@1.0.0", dest)
    assert repr(evil) in ei.value.what and ei.value.fix
    assert os.listdir(work) == []
    assert not os.path.exists("/tmp/lensvault-evil.txt")
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("link", ["copy", "hardlink"])
def test_missing_objects_stop_the_checkout_and_leave_nothing_behind(local_ds, sqlite_vault, tmp_path, link):
    _missing_objects_stop_the_checkout(local_ds, sqlite_vault, tmp_path, link)


def test_missing_objects_stop_a_copy_from_any_store(ds, store_vault, tmp_path):
    _missing_objects_stop_the_checkout(ds, store_vault, tmp_path, "auto")


def _missing_objects_stop_the_checkout(ds, vault, tmp_path, link):
    oids = sorted(set(ds.files()["sha256"].to_pylist()))[:2]
    for oid in oids:
        lose_object(vault, oid)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(ObjectMissing) as ei:
        ds.checkout(work / "out", link=link)
    assert ei.value.details["missing"] == oids and "verify" in ei.value.fix  # every one, not just the first met
    assert "2 object(s)" in ei.value.what
    assert os.listdir(work) == []  # neither DEST nor the staging folder


def test_checkout_into_a_dest_with_a_long_name(ds, tmp_path):
    dest = tmp_path / ("d" * 250)
    ds.checkout(dest)
    assert (dest / "a.txt").read_text() == "alpha"


def test_a_corrupt_object_stops_the_checkout_on_any_store(ds, store_vault, tmp_path):
    oid = dict(zip(ds.files()["path"].to_pylist(), ds.files()["sha256"].to_pylist()))["img/deep/c.bin"]
    damage_object(store_vault, oid, offset=7)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(IntegrityError) as ei:
        ds.checkout(work / "out", link="copy")
    assert ei.value.details["corrupt"] == [oid] and ei.value.where == store_vault.store.location(oid)
    assert os.listdir(work) == []


def test_links_into_a_store_without_local_files_are_refused_before_anything_is_written(tmp_path):
    import uuid

    import lensvault

    vault = lensvault.init(tmp_path / "vault", store=f"memory://{uuid.uuid4().hex}")
    try:
        ds = vault.snapshot("ds", write_files(tmp_path / "src", FILES), version="1.0.0")
        for link in ("hardlink", "symlink", "reflink"):
            with pytest.raises(UsageError) as ei:
                ds.checkout(tmp_path / link, link=link)
            assert ei.value.where == f"--link {link}" and "--link copy" in ei.value.fix
            assert not (tmp_path / link).exists()
            with pytest.raises(UsageError):
                vault.snapshot("other", tmp_path / "src", version="1.0.0", link=link)
        assert [d["name"] for d in vault.datasets()] == ["ds"]
    finally:
        vault.close()
