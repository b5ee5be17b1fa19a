"""store/inode_index.py: a local store listed once with inodes answers ``absent_or_damaged`` as the
store does, for every kind of object a re-snapshot of a hardlinked folder meets."""

from __future__ import annotations

import hashlib
import os

from lensvault.store import open_store


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
