"""The ObjectStore contract, on both implementations: the local folder and the in-memory store.

Everything above lensvault/store/ reaches the bytes through this interface; a backend that
passes these (and the vault tests parametrized over ``store_url``) can replace another.
"""

from __future__ import annotations

import hashlib
import time
import uuid

import pytest
from _lvtest import write_files

from lensvault.errors import ObjectMissing, ObjectsVanished, StorageError, UsageError
from lensvault.store import LinkMode, LocalObjectStore, ObjectStore, open_store
from lensvault.store.memory import MemoryObjectStore


def _oid(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(params=["local", "memory"])
def store(request, tmp_path) -> ObjectStore:
    s = open_store(tmp_path / "objects" if request.param == "local" else f"memory://{uuid.uuid4().hex}")
    s.create()
    return s


def _damage(store: ObjectStore, oid: str, data: bytes) -> None:
    path = store.local_path(oid)
    if path is None:
        store.damage(oid, data)
        return
    import os

    os.chmod(path, 0o644)
    with open(path, "wb") as f:
        f.write(data)


def test_put_read_stat_and_list(store):
    t0 = time.time()
    oid = store.put_bytes(b"hello")
    assert oid == _oid(b"hello")
    assert store.has(oid) and store.missing([oid, "0" * 64]) == ["0" * 64]
    st = store.stat(oid)
    assert st.size == 5 and t0 - 2 <= st.stored_at <= time.time() + 2
    assert store.size(oid) == 5
    with store.open(oid) as f:
        assert f.read() == b"hello"
    assert store.read_bytes(oid) == b"hello"
    assert list(store.iter_oids()) == [oid]
    assert store.check(oid) == "ok" and store.check_keyed(oid)[0] == "ok"
    assert store.exists()


def test_a_missing_object_is_object_missing_everywhere(store):
    oid = "ab" + "0" * 62
    for call in (store.open, store.stat, store.size, store.read_bytes):
        with pytest.raises(ObjectMissing) as ei:
            call(oid)
        assert ei.value.details["oid"] == oid and "verify" in ei.value.fix
        assert ei.value.where == store.location(oid)
    assert store.check(oid) == "missing"


def test_damaged_bytes_are_found_by_check_and_read_bytes(store):
    oid = store.put_bytes(b"twelve bytes")
    _damage(store, oid, b"twelve BYTES")
    assert store.check(oid) == "corrupt"
    from lensvault.errors import IntegrityError

    with pytest.raises(IntegrityError) as ei:
        store.read_bytes(oid)
    assert ei.value.details["corrupt"] == [oid] and ei.value.where == store.location(oid)
    # Same size: only a hash tells; another size: absent_or_damaged tells without reading.
    assert store.absent_or_damaged([oid], [12]) == []
    _damage(store, oid, b"short")
    assert store.absent_or_damaged([oid, "0" * 64], [12, 1]) == [0, 1]


def test_put_files_skips_what_is_intact_and_replaces_what_is_not(store, tmp_path):
    src = write_files(tmp_path / "src", {"a": b"alpha" * 100, "b": b"beta" * 100, "a2": b"alpha" * 100})
    items = [(str(src / n), _oid((src / n).read_bytes())) for n in ("a", "b", "a2")]
    done = []
    store.put_files(items, on_done=done.append)
    assert sum(done) == 3 and sorted(store.iter_oids()) == sorted({o for _, o in items})
    _damage(store, items[0][1], b"truncated")
    store.put_files(items[:1])
    assert store.check(items[0][1]) == "ok"
    with pytest.raises(StorageError):
        store.put_files([(str(src / "gone"), "f" * 64)])


def test_restore_takes_only_bytes_that_hash_right(store, tmp_path):
    good = write_files(tmp_path / "g", {"x": b"the right bytes"}) / "x"
    bad = write_files(tmp_path / "b", {"x": b"the wrong bytes"}) / "x"
    oid = _oid(good.read_bytes())
    assert not store.restore(oid, bad) and not store.has(oid)
    assert not store.restore(oid, tmp_path / "nowhere")
    assert store.restore(oid, good) and store.check(oid) == "ok"
    _damage(store, oid, b"the WRONG bytes")
    assert store.restore_bytes(oid, good.read_bytes()) and store.check(oid) == "ok"
    assert not store.restore_bytes(oid, b"nope")


def test_delete_and_quarantine(store):
    a, b = store.put_bytes(b"a"), store.put_bytes(b"b")
    store.delete(a)
    store.delete(a)  # gone already: no error
    assert not store.has(a)
    where = store.quarantine(b)
    assert where and not store.has(b) and store.quarantine(b) is None


def test_pins_protect_until_released_and_commits_check_presence(store):
    oid = store.put_bytes(b"in flight")  # put pins for this (live) process
    assert oid in store.pinned(0)
    store.release_pins()
    assert oid not in store.pinned(0)
    store.pin([oid])
    assert oid in store.pinned(0)
    with store.committing([oid]) as check:
        other = store.put_bytes(b"made inside")
        check([other])
    assert store.pinned(0) == set()  # a commit releases the process's pins
    store.delete(oid)
    with pytest.raises(ObjectsVanished) as ei, store.committing([oid]):
        pass
    assert ei.value.details["missing"] == [oid]
    with store.gc_lock():
        pass


def test_the_vaults_sharing_a_store_are_listed(store, tmp_path):
    store.register_vault("b" * 32, tmp_path / "b")
    store.register_vault("a" * 32, tmp_path / "a")
    assert store.vaults() == [{"vault_id": "a" * 32, "path": str(tmp_path / "a")},
                              {"vault_id": "b" * 32, "path": str(tmp_path / "b")}]


def test_refs_are_written_once_when_exclusive_and_listed_by_prefix(store):
    assert store.put_ref("ledgers/c/refs/x/1", b"one", exclusive=True)
    assert not store.put_ref("ledgers/c/refs/x/1", b"two", exclusive=True)
    assert store.get_ref("ledgers/c/refs/x/1") == b"one"
    assert store.put_ref("ledgers/c/refs/x/1", b"moved")
    store.put_ref("ledgers/c/journal/e", b"", exclusive=True)
    assert store.list_refs("ledgers/c/refs") == ["ledgers/c/refs/x/1"]
    assert store.list_refs("ledgers/c") == ["ledgers/c/journal/e", "ledgers/c/refs/x/1"]
    store.delete_ref("ledgers/c/refs/x/1")
    assert store.get_ref("ledgers/c/refs/x/1") is None
    with pytest.raises(UsageError):
        store.put_ref("../../escape", b"x")


def test_only_a_store_with_local_files_offers_paths(store):
    oid = store.put_bytes(b"where")
    if isinstance(store, LocalObjectStore):
        assert store.local_path(oid) == str(store.oid_to_path(oid)) == store.location(oid)
    else:
        assert store.local() is None and store.local_path(oid) is None
        assert store.location(oid) == f"{store.url}/{oid}"


def test_links_need_local_files(store, tmp_path):
    from lensvault.store import local_links

    oid = store.put_bytes(b"bytes")
    out = tmp_path / "out"
    out.mkdir()
    assert local_links.materialize(store, [(oid, str(out / "auto"))], LinkMode.AUTO) <= {LinkMode.REFLINK, LinkMode.COPY}
    assert (out / "auto").read_bytes() == b"bytes"
    for link in ("hardlink", "symlink", "reflink"):
        if store.local() is None:
            with pytest.raises(UsageError) as ei:
                local_links.materialize(store, [(oid, str(out / link))], link)
            assert "--link copy" in ei.value.fix and not (out / link).exists()
    src = write_files(tmp_path / "src", {"f": b"linked in"}) / "f"
    if store.local() is None:
        with pytest.raises(UsageError):
            local_links.put_files(store, [(str(src), _oid(b"linked in"))], "hardlink")
        assert local_links.ingest_batch(store, "auto") is None
    else:
        local_links.put_files(store, [(str(src), _oid(b"linked in"))], "hardlink")
        assert store.check(_oid(b"linked in")) == "ok"


def test_a_memory_store_is_found_by_name_only_in_the_process_that_made_it():
    name = uuid.uuid4().hex
    s = open_store(f"memory://{name}")
    assert isinstance(s, MemoryObjectStore) and not s.exists()
    s.create()
    assert open_store(f"memory://{name}") is s and s.exists()
    assert open_store(f"memory://{uuid.uuid4().hex}") is not s
