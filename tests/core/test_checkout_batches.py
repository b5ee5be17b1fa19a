"""A checkout goes a batch of files at a time (``listing.BATCH_ROWS``): with more files than one
batch it writes, caches and reports exactly what a one-batch checkout does, and its errors
(missing, corrupt, a tampered path, a pattern that selects nothing) still name everything and
leave nothing behind, whichever batch they are found in.

The batch is made tiny here (4 files); the rows come from the cached listing, or from the
version's files table (real Parquet), read page by page as for a million files."""

from __future__ import annotations

import json
import os

import pytest
from _lvtest import damage_object, lose_object, settle, write_files

from lensvault.datasets import listing
from lensvault.errors import IntegrityError, NotFound, ObjectMissing

# 23 files, in an order that splits folders across batches; "a/b/..." sorts between "a.txt"
# and "a/c.txt", and "a-b/" before "a/": a folder's files are not all in one batch.
FILES = {
    "a.txt": "top",
    "a-b/y.txt": "dash",
    **{f"a/b/x{i}.txt": f"deep {i}" for i in range(5)},
    "a/c.txt": "after the subfolder",
    **{f"img/{i:02d}.jpg": b"\xff\xd8\xff" + bytes([i]) * (50 + i) for i in range(10)},
    **{f"labels/{i:02d}.txt": f"{i} 0.5 0.5 0.1 0.1" for i in range(5)},
}
BATCH = 4


@pytest.fixture(params=["listing", "parquet"])
def source(request, monkeypatch):
    """Where the rows come from: the stat cache's listing, cut in slices, or (a version too big
    for a listing, state.LISTING_MAX_ROWS) the Parquet files table, page by page."""
    if request.param == "parquet":
        from lensvault.state import FileState

        monkeypatch.setattr(FileState, "listing", lambda self, snapshot_id: None)
    return request.param


@pytest.fixture
def small_batches(monkeypatch, source):
    monkeypatch.setattr(listing, "BATCH_ROWS", BATCH)


def _snapshot(vault, tmp_path):
    ds = vault.snapshot("ds", write_files(tmp_path / "src", FILES), version="1.0.0")
    settle()
    return ds


def _files(root):
    out = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            out[os.path.relpath(p, root)] = open(p, "rb").read()  # noqa: SIM115 - read whole, closed by GC
    return out


def _oid(ds, rel):
    return dict(zip(ds.files()["path"].to_pylist(), ds.files()["sha256"].to_pylist()))[rel]


def _checkout_and_record(vault, ds, dest, link, monkeypatch, rows):
    monkeypatch.setattr(listing, "BATCH_ROWS", rows)
    res = vault.checkout(ds.ref, dest, link=link)
    real = os.path.realpath(dest)
    entries = vault.state.index(real)
    # Every file's stat-cache entry, in path order, with its key as it is on disk (looked at
    # now: another hardlink checkout of the same objects moves their ctime).
    assert list(entries) == sorted(FILES)
    for rel, (ino, size, mtime, ctime, oid, media, *_) in entries.items():
        st = os.stat(dest / rel)
        assert (ino, size, ctime) == (st.st_ino, st.st_size, st.st_ctime_ns) and mtime in (st.st_mtime_ns, -1)
        assert oid == _oid(ds, rel) and media is not None
    return res, entries, vault.state.index_digest(real)


@pytest.mark.parametrize("link", ["copy", "hardlink", "symlink"])
def test_a_checkout_of_many_batches_is_the_checkout_of_one(sqlite_vault, tmp_path, monkeypatch, source, link):
    vault = sqlite_vault
    ds = _snapshot(vault, tmp_path)
    one = _checkout_and_record(vault, ds, tmp_path / "one", link, monkeypatch, 1000)
    many = _checkout_and_record(vault, ds, tmp_path / "many", link, monkeypatch, BATCH)
    assert len(FILES) > 5 * BATCH
    want = {rel: (v.encode() if isinstance(v, str) else v) for rel, v in FILES.items()}
    for name, (res, _, digest) in (("one", one), ("many", many)):
        got = _files(tmp_path / name)
        marker = json.loads(got.pop(".lensvault-checkout.json"))
        assert got == want
        assert marker == {"ref": "ds@1.0.0", "snapshot_id": ds.snapshot_id, "link": link}
        assert (res.files, res.bytes) == (len(FILES), sum(map(len, want.values())))
        assert digest == ds.manifest().tables["files"]["digest"]
    # The same entries but for the files' own keys (each checkout made its own files).
    assert [e[4:] for e in one[1].values()] == [e[4:] for e in many[1].values()]
    for name in ("one", "many"):
        st = vault.status(None, tmp_path / name)
        assert st.clean and st.unchanged == len(FILES), st


@pytest.mark.parametrize("link", ["copy", "hardlink"])
def test_missing_objects_in_later_batches_are_all_named_and_nothing_is_left(sqlite_vault, tmp_path, small_batches,
                                                                            link):
    vault = sqlite_vault
    ds = _snapshot(vault, tmp_path)
    lost = sorted({_oid(ds, "img/05.jpg"), _oid(ds, "labels/04.txt")})  # the 4th batch and the last
    for oid in lost:
        lose_object(vault, oid)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(ObjectMissing) as ei:
        vault.checkout(ds.ref, work / "out", link=link)
    assert ei.value.details["missing"] == lost and "2 object(s) of ds@1.0.0" in ei.value.what
    assert os.listdir(work) == []  # neither DEST nor the staging folder
    assert vault.state.index(os.path.realpath(work / "out")) == {}


def test_corrupt_objects_in_later_batches_are_all_named_by_a_linked_checkout(sqlite_vault, tmp_path, small_batches):
    """The first corrupt object stops the linking; the objects of the batches not written yet are
    checked before the error, which names every corrupt object of the version, as one pass did."""
    vault = sqlite_vault
    ds = _snapshot(vault, tmp_path)
    bad = sorted({_oid(ds, "img/01.jpg"), _oid(ds, "labels/03.txt")})  # the 3rd batch and the last
    for oid in bad:
        damage_object(vault, oid, offset=1)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(IntegrityError) as ei:
        vault.checkout(ds.ref, work / "out", link="hardlink")
    assert ei.value.details["corrupt"] == bad and "2 object(s) of ds@1.0.0 are corrupt" in ei.value.what
    assert "ds@1.0.0" in ei.value.fix  # the versions that need them
    assert os.listdir(work) == []
    assert vault.state.index(os.path.realpath(work / "out")) == {}


def test_a_corrupt_object_in_a_later_batch_stops_a_copy(store_vault, tmp_path, small_batches):
    vault = store_vault
    ds = _snapshot(vault, tmp_path)
    oid = _oid(ds, "labels/02.txt")
    damage_object(vault, oid, offset=1)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(IntegrityError) as ei:
        ds.checkout(work / "out", link="copy")
    assert ei.value.details["corrupt"] == [oid] and ei.value.where == vault.store.location(oid)
    assert os.listdir(work) == []


def test_a_partial_checkout_across_batches(sqlite_vault, tmp_path, small_batches):
    vault = sqlite_vault
    ds = _snapshot(vault, tmp_path)
    patterns = ["a/", "img/01.jpg", "img/0?.jpg", "**/04.txt", "a.txt"]
    res = vault.checkout(ds.ref, tmp_path / "some", paths=patterns, link="hardlink")
    got = _files(tmp_path / "some")
    assert json.loads(got.pop(".lensvault-checkout.json"))["paths"] == patterns
    want = sorted(["a.txt", *(f"a/b/x{i}.txt" for i in range(5)), "a/c.txt", *(f"img/{i:02d}.jpg" for i in range(10)),
                   "labels/04.txt"])
    assert sorted(got) == want and res.files == len(want)
    entries = vault.state.index(os.path.realpath(tmp_path / "some"))
    assert list(entries) == want
    assert vault.state.index_digest(os.path.realpath(tmp_path / "some")) is None  # not the version's table
    st = vault.status(None, tmp_path / "some")
    assert st.clean and st.unchanged == len(want), st


def test_a_pattern_that_selects_nothing_fails_before_anything_is_written(sqlite_vault, tmp_path, small_batches):
    vault = sqlite_vault
    ds = _snapshot(vault, tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(NotFound) as ei:
        vault.checkout(ds.ref, work / "out", paths=["a/", "labels/99.txt"])
    assert "'labels/99.txt'" in ei.value.what and "'a/'" not in ei.value.what
    assert os.listdir(work) == []


def test_a_path_escaping_dest_in_a_later_batch_leaves_nothing(sqlite_vault, tmp_path, small_batches):
    """Each batch's paths are checked before that batch is written; what earlier batches wrote
    is in the staging folder, removed with it: nothing reaches DEST or leaves it."""
    from lensvault.datasets import files_table
    from lensvault.datasets.snapshot import commit_version

    vault = sqlite_vault
    oid = vault.store.put_bytes(b"fine")
    paths = sorted([f"ok/{i:02d}.txt" for i in range(13)] + ["ok/zz/../../../evil.txt"])
    assert paths.index("ok/zz/../../../evil.txt") >= BATCH  # (not in the first batch)
    n = len(paths)
    table = files_table.build(paths, [4] * n, [oid] * n, ["text/plain"] * n, [None] * n, [None] * n)
    commit_version(vault, name="evil", version="1.0.0", files=table)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(IntegrityError) as ei:
        vault.checkout("evil@1.0.0", work / "dest")
    assert "'ok/zz/../../../evil.txt'" in ei.value.what
    assert os.listdir(work) == []
    assert not (tmp_path / "evil.txt").exists()
