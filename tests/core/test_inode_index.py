"""store/inode_index.py: a local store listed once with inodes answers ``absent_or_damaged`` as the
store does, for every kind of object a re-snapshot of a hardlinked folder meets."""

from __future__ import annotations

import hashlib
import json
import os
import time

import pytest

from lensvault.store import inode_index, listing_cache, open_store
from lensvault.store.inode_index import InodeIndex, SharedListing


def test_the_listing_answers_as_the_store_does(tmp_path):
    store = open_store(tmp_path / "objects")
    store.create()
    src = tmp_path / "src"
    src.mkdir()
    files: list[tuple[str, int, int]] = []  # (oid, size, inode of the file it came from)
    for i in range(40):
        p = src / f"f{i}"
        p.write_bytes(b"x" * i + b"%d" % i)
        oid = hashlib.sha256(p.read_bytes()).hexdigest()
        if i % 4 == 0:  # copied, not linked: another inode, asked of the store
            store.put_bytes(p.read_bytes())
        else:
            os.link(p, store.oid_to_path(oid))
        files.append((oid, p.stat().st_size, p.stat().st_ino))
    gone, truncated, twin = files[5][0], files[8][0], files[9][0]
    os.unlink(store.oid_to_path(gone))
    t = store.oid_to_path(truncated)
    os.chmod(t, 0o644)
    with open(t, "r+b") as f:
        f.truncate(1)
    # A name sharing the first 16 hex digits of an object that is its file's inode, sorting before
    # it: the lookup finds this one, whose inode is not the file's, and the store is asked.
    fake = store.oid_to_path(twin[:16] + "0" * 48)
    fake.write_bytes(b"not an object")
    index = store.inode_index(len(files))
    assert index is not None and len(index) == 40  # 40 stored, one gone, the fake
    oids, sizes, inodes = zip(*files)
    expected = store.absent_or_damaged(list(oids), list(sizes), list(inodes))
    assert sorted(index.absent_or_damaged(list(oids), list(sizes), list(inodes))) == sorted(expected)
    assert {oids[i] for i in expected} == {gone, truncated}  # (the truncated one is a copy: f8)
    assert index.absent_or_damaged([], [], []) == []
    assert index.absent_or_damaged(list(oids), list(sizes)) == store.absent_or_damaged(list(oids), list(sizes))


def test_a_store_much_bigger_than_the_folder_is_not_listed(tmp_path):
    store = open_store(tmp_path / "objects")
    store.create()
    for i in range(3000):  # (object files made directly: only their number matters here)
        oid = hashlib.sha256(b"%d" % i).hexdigest()
        store.oid_to_path(oid).write_bytes(b"%d" % i)
    assert store.inode_index(10) is None  # (a stat each is cheaper than listing everything)
    assert store.inode_index(3000) is not None
    from lensvault.store import inode_index

    inode_index.LISTED_UP_TO = 1000  # a store too big to hold listed: a stat each, in flat memory
    try:
        assert store.inode_index(3000) is None
    finally:
        inode_index.LISTED_UP_TO = 4_000_000


def _store_of(tmp_path, n):
    store = open_store(tmp_path / "objects")
    store.create()
    for i in range(n):
        store.put_bytes(b"object %d" % i)
    return store


def _same(a, b):
    return a._keys.tolist() == b._keys.tolist() and a._inodes.tolist() == b._inodes.tolist()


@pytest.mark.parametrize("first", [0, 1])
def test_two_processes_swap_halves_and_each_has_the_whole_listing(tmp_path, first):
    """The two processes of a shared walk list half the shards each and swap them: each ends with
    the listing one process would make, whichever of them gets there first."""
    store = _store_of(tmp_path, 600)
    whole = InodeIndex(store)
    shared = store.inode_listing(600)
    assert isinstance(shared, SharedListing)
    out = tmp_path / "child"
    pid = os.fork()
    if pid == 0:  # the process of part 1
        code = 1
        try:
            if first == 0:
                time.sleep(0.3)
            got = shared.index(1)
            out.write_text(json.dumps([got._keys.tolist(), got._inodes.tolist()]))
            code = 0
        finally:
            os._exit(code)
    if first == 1:
        time.sleep(0.3)
    mine = shared.index(0)
    shared.close()
    _, status = os.waitpid(pid, 0)
    assert status == 0
    keys, inodes = json.loads(out.read_text())
    assert _same(mine, whole) and keys == whole._keys.tolist() and inodes == whole._inodes.tolist()
    assert len(whole) == 600


def test_a_process_whose_other_half_never_comes_lists_it_itself(tmp_path):
    """The other process failed, or stopped before its swap (or was never forked): the half it
    would have sent is listed here, and the listing is still the whole store."""
    store = _store_of(tmp_path, 300)
    whole = InodeIndex(store)
    for part in (0, 1):
        shared = store.inode_listing(300)
        pid = os.fork()
        if pid == 0:  # the other process: gone without a word (its ends close as it exits)
            os._exit(0)
        got = shared.index(part)
        os.waitpid(pid, 0)
        assert _same(got, whole)
        assert not shared._open  # every end closed here
    alone = store.inode_listing(300)
    alone.alone = True  # no second process: one whole listing, made once for both parts
    assert _same(alone.index(0), whole) and alone.index(1) is alone.index(0)


def test_lookups_answer_in_the_order_asked(tmp_path):
    """Looked up sorted, answered in the caller's order: the indexes of the absent ones, ascending."""
    store = _store_of(tmp_path, 50)
    oids = [hashlib.sha256(b"object %d" % i).hexdigest() for i in range(50)]
    gone = [oids[7], oids[31], oids[2]]
    for o in gone:
        os.unlink(store.oid_to_path(o))
    index = InodeIndex(store)
    asked = list(reversed(oids))
    sizes = [len(b"object %d" % i) for i in reversed(range(50))]
    inodes = [0] * 50  # no file is its object: every one found is asked of the store
    bad = index.absent_or_damaged(asked, sizes, inodes)
    assert bad == sorted(asked.index(o) for o in gone)
    assert bad == store.absent_or_damaged(asked, sizes)


def _age_shards(store, shards=None) -> None:
    """These shard folders (None: all) last changed 30 s ago: past the tick in which they could change unseen."""
    then = time.time() - 30
    for name in shards if shards is not None else [f"{i:02x}" for i in range(256)]:
        d = store.root / name
        if d.is_dir():
            os.utime(d, (then, then))


def _counting(monkeypatch) -> list[str]:
    listed: list[str] = []
    real = inode_index._list_shard
    monkeypatch.setattr(inode_index, "_list_shard", lambda root, shard: (listed.append(shard), real(root, shard))[1])
    return listed


def _answers(store, index, oids):
    sizes = [len(b"object %d" % i) for i in range(len(oids))]
    inodes = [os.stat(store.oid_to_path(o)).st_ino if store.oid_to_path(o).exists() else 0 for o in oids]
    return index.absent_or_damaged(oids, sizes, inodes)


def test_unchanged_shards_are_not_listed_again(tmp_path, monkeypatch):
    """A shard folder with the inode and mtime it had when listed holds the same names: its listing
    is read from the kept file. One that changed is listed again, and the answers are a new listing's."""
    store = _store_of(tmp_path, 400)
    oids = [hashlib.sha256(b"object %d" % i).hexdigest() for i in range(400)]
    _age_shards(store)
    listed = _counting(monkeypatch)
    first = InodeIndex(store)
    assert len(listed) == 256 and (store.root / listing_cache.NAME).is_file()
    listed.clear()
    again = InodeIndex(store)
    assert listed == [] and _same(again, first)

    # One object removed by hand, one added: their shards (only) are listed again.
    os.unlink(store.oid_to_path(oids[10]))
    added = store.put_bytes(b"object 400")
    oids.append(added)
    listed.clear()
    now = InodeIndex(store)
    assert sorted(listed) == sorted({oids[10][:2], added[:2]})
    assert _answers(store, now, oids) == [10] and len(now) == 400
    # Those two changed just now: listed again next time too (they could change again unseen
    # within their mtime's tick), until they are old enough.
    listed.clear()
    InodeIndex(store)
    assert sorted(listed) == sorted({oids[10][:2], added[:2]})
    _age_shards(store, {oids[10][:2], added[:2]})
    listed.clear()
    InodeIndex(store)
    assert sorted(listed) == sorted({oids[10][:2], added[:2]})  # (kept as untrusted: listed once more)
    listed.clear()
    assert _same(InodeIndex(store), now) and listed == []


def test_a_shard_folder_replaced_or_a_damaged_file_is_listed_again(tmp_path, monkeypatch):
    store = _store_of(tmp_path, 300)
    oids = [hashlib.sha256(b"object %d" % i).hexdigest() for i in range(300)]
    _age_shards(store)
    whole = InodeIndex(store)
    listed = _counting(monkeypatch)
    # A shard folder replaced by another with the same mtime (restored from a copy): another inode.
    shard = store.root / oids[0][:2]
    st = shard.stat()
    os.rename(shard, tmp_path / "away")
    shard.mkdir()
    for p in (tmp_path / "away").iterdir():
        os.link(p, shard / p.name)  # (the same objects, so the answers are too)
    os.utime(shard, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert shard.stat().st_mtime_ns == st.st_mtime_ns and shard.stat().st_ino != st.st_ino
    assert _same(InodeIndex(store), whole) and listed == [oids[0][:2]]
    # The kept file damaged, torn or of another layout: ignored, every shard listed, same answers.
    kept = store.root / listing_cache.NAME
    good = kept.read_bytes()
    for bad in (good[:-1], good[:100], good[:-8] + bytes(8), b"something else\n" + good[20:], b""):
        kept.write_bytes(bad)
        listed.clear()
        assert _same(InodeIndex(store), whole)
        assert len(listed) == 256
    assert _answers(store, InodeIndex(store), oids) == []


def test_recent_shards_are_never_trusted(tmp_path, monkeypatch):
    """Shards changed within the tick of being stat'ed are listed every time until they age."""
    store = _store_of(tmp_path, 100)
    listed = _counting(monkeypatch)
    InodeIndex(store)
    n = len(listed)
    listed.clear()
    InodeIndex(store)
    assert len(listed) == n > 0
