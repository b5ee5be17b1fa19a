"""The local object store: layout, atomic read-only writes, dedup, missing objects.

(The interface's contract, on every implementation: test_store_interface.py.)"""

from __future__ import annotations

import hashlib
import os
import stat

import pytest
from _lvtest import ledger_oids, oids_in_store, write_files

from lensvault.errors import ObjectMissing, StorageError
from lensvault.store import LinkMode, LocalObjectStore, open_store
from lensvault.store.base import is_oid
from lensvault.store.local_links import materialize


@pytest.fixture
def store(tmp_path) -> LocalObjectStore:
    s = LocalObjectStore(tmp_path / "objects")
    s.create()
    return s


def test_put_bytes_uses_the_sharded_layout_and_is_read_only(store):
    data = b"hello objects"
    oid = store.put_bytes(data)
    assert oid == hashlib.sha256(data).hexdigest()
    path = store.root / oid[:2] / oid[2:]
    assert path.is_file() and path.read_bytes() == data
    assert store.oid_to_path(oid) == path and store.path_to_oid(path) == oid
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert os.listdir(store.root / "tmp") == []
    assert list(store.iter_oids()) == [oid]
    assert store.size(oid) == len(data) and store.read_bytes(oid) == data


def test_put_files_are_atomic_read_only_and_stored_once(store, tmp_path):
    # 40 files (over the threaded threshold), half of them with duplicate content.
    files = {f"d/{i:03}.bin": f"content-{i % 20}".encode() for i in range(40)}
    src = write_files(tmp_path / "src", files)
    items = [(str(src / rel), hashlib.sha256(data).hexdigest()) for rel, data in files.items()]
    done = []
    store.put_files(items, on_done=done.append)
    assert sum(done) == 40
    stored = sorted(store.iter_oids())
    assert stored == sorted({oid for _, oid in items})
    assert len(stored) == 20
    for oid in stored:
        p = store.oid_to_path(oid)
        assert stat.S_IMODE(p.stat().st_mode) == 0o444
        assert store.check(oid) == "ok"
    assert os.listdir(store.root / "tmp") == []
    # A second put of the same content writes nothing new.
    before = {o: store.oid_to_path(o).stat().st_ino for o in stored}
    store.put_files(items)
    assert {o: store.oid_to_path(o).stat().st_ino for o in stored} == before


def test_identical_content_is_stored_once_across_versions(store_vault, tmp_path):
    big = os.urandom(50_000)
    src = write_files(tmp_path / "src", {"a.bin": big, "copy/a.bin": big, "b.txt": "b"})
    store_vault.snapshot("ds", src, version="1.0.0")
    n1 = len(oids_in_store(store_vault) - ledger_oids(store_vault))
    # 2 distinct contents + files table + snapshot + manifest (+ the ledger's records of the writes)
    assert n1 == 5
    (src / "c.txt").write_text("c")
    store_vault.snapshot("ds", src, version="1.1.0")
    oids = oids_in_store(store_vault) - ledger_oids(store_vault)
    # one new content, new files table, new snapshot, new manifest; big stored once
    assert len(oids) == n1 + 4
    assert hashlib.sha256(big).hexdigest() in oids
    sizes = [store_vault.store.stat(o).size for o in oids_in_store(store_vault)]
    assert sizes.count(len(big)) == 1


def test_open_of_a_missing_object_raises_object_missing_with_a_fix(store):
    oid = "ab" + "0" * 62
    with pytest.raises(ObjectMissing) as ei:
        store.open(oid)
    e = ei.value
    assert e.fix and "verify" in e.fix
    assert e.where == str(store.root / "ab" / ("0" * 62))
    assert e.details["oid"] == oid
    assert isinstance(e, KeyError) and e.exit_code == 3
    with pytest.raises(ObjectMissing):
        store.size(oid)
    with pytest.raises(ObjectMissing):
        materialize(store, [(oid, store.root.parent / "out.bin")], LinkMode.COPY)
    assert store.check(oid) == "missing"
    assert store.missing([oid]) == [oid]


def test_check_detects_corrupt_bytes(store):
    oid = store.put_bytes(b"some bytes")
    p = store.oid_to_path(oid)
    os.chmod(p, 0o644)
    p.write_bytes(b"other bytes")
    assert store.check(oid) == "corrupt"


def test_put_files_with_a_vanished_source_leaves_no_temp_files(store, tmp_path):
    src = write_files(tmp_path / "src", {f"{i}.txt": f"x{i}" for i in range(20)})
    items = [(str(src / f"{i}.txt"), hashlib.sha256(f"x{i}".encode()).hexdigest()) for i in range(20)]
    items.append((str(src / "gone.txt"), "f" * 64))
    with pytest.raises(StorageError):
        store.put_files(items)
    assert os.listdir(store.root / "tmp") == []
    # Nothing is renamed into place before the whole batch is staged.
    assert list(store.iter_oids()) == []


def test_materialize_copies_are_writable_and_hardlinks_share_the_object(store, tmp_path):
    oid = store.put_bytes(b"pixels")
    out = tmp_path / "out"
    out.mkdir()
    materialize(store, [(oid, out / "copy.bin")], LinkMode.COPY)
    assert (out / "copy.bin").read_bytes() == b"pixels"
    assert stat.S_IMODE((out / "copy.bin").stat().st_mode) == 0o644
    materialize(store, [(oid, out / "hard.bin")], LinkMode.HARDLINK)
    assert (out / "hard.bin").stat().st_ino == store.oid_to_path(oid).stat().st_ino
    assert stat.S_IMODE((out / "hard.bin").stat().st_mode) == 0o444


def test_iter_oids_ignores_foreign_files(store):
    oid = store.put_bytes(b"x")
    (store.root / "ab" / "not-an-oid").write_text("junk")
    (store.root / "README").write_text("junk")
    assert list(store.iter_oids()) == [oid]
    assert is_oid(oid) and not is_oid(oid.upper()) and not is_oid(oid[:-1])


def test_open_store_by_url(tmp_path):
    assert isinstance(open_store(str(tmp_path / "s")), LocalObjectStore)
    assert open_store("rel/objects", base=tmp_path).root == tmp_path / "rel" / "objects"
    assert open_store(f"file://{tmp_path}/x").root == tmp_path / "x"
    from lensvault.errors import UsageError

    for url in ("s3://bucket/objects", "gopher://x"):
        with pytest.raises(UsageError) as ei:
            open_store(url)
        assert ei.value.fix
