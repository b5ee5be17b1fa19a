"""What a re-snapshot's store check and a checkout's verified-object record hold stays within a
fixed budget, not one that grows with the store (issue 16: peak RSS flat from 1M to 2M files).

Measured with tracemalloc, which sees every Python object and every NumPy buffer: exact where a
process's RSS at these sizes would be noise (benchmarks/bench_scale.py measures RSS at 1M and 2M).
"""

from __future__ import annotations

import hashlib
import os
import random
import tracemalloc
from collections.abc import Callable
from typing import Any

from lensvault.store.local import LocalObjectStore
from lensvault.store.verified import VerifiedObjects


def _peak_bytes(fn: Callable[[], Any]) -> tuple[int, Any]:
    tracemalloc.start()
    try:
        out = fn()
        return tracemalloc.get_traced_memory()[1], out
    finally:
        tracemalloc.stop()


def test_a_small_batch_of_linked_objects_is_checked_without_listing_the_store(tmp_path):
    """The last batch of a re-snapshot's scan (a few hundred unchanged files) used to list every
    shard folder it touched with inode numbers: the whole store, ~100 bytes an object (107 MB in
    each scan process at a million objects)."""
    store = LocalObjectStore(tmp_path / "store")
    store.create()
    rnd = random.Random(7)
    src = tmp_path / "src"
    src.mkdir()
    items = []
    for i in range(6_000):
        data = b"%d:" % i + rnd.randbytes(8)
        (src / str(i)).write_bytes(data)
        items.append((str(src / str(i)), hashlib.sha256(data).hexdigest()))
    store.put_files(items)
    oids = [o for _, o in items]
    paths = [str(store.oid_to_path(o)) for o in oids]
    batch = oids[:300]
    sizes = [os.stat(p).st_size for p in paths[:300]]
    inodes = [os.stat(p).st_ino for p in paths[:300]]
    sizes[1] += 1  # another size (and another inode): damaged
    inodes[1] += 1
    os.unlink(paths[2])  # gone
    inodes[3] += 1  # another inode, the same size: not damaged
    peak, bad = _peak_bytes(lambda: store.absent_or_damaged(batch, sizes, inodes))
    assert bad == [1, 2]
    # ~2 KB now; listing the ~180 shards it touches held ~730 KB here (~100 bytes an object).
    assert peak < 128 * 1024, peak


def test_the_first_load_after_a_big_delta_folds_it_without_holding_a_sort_of_it(tmp_path):
    """A big snapshot writes its objects' keys as one big delta; the next checkout folds it into
    the base. Folded in memory that was ~180 bytes an object at the peak (288 MB for a checkout of
    a million files, 453 at two million); merged as sorted runs on disk it is what the base is
    (56 bytes an object, read whole) and its bucket table."""
    n = 200_000
    rnd = random.Random(8)
    record = VerifiedObjects(tmp_path / "verified")
    keys = {f"{rnd.getrandbits(256):064x}": (rnd.getrandbits(40), rnd.randint(1, 4096), rnd.getrandbits(60))
            for _ in range(n)}
    record.add(keys)
    newer = next(iter(keys))
    record.add({newer: (1, 2, 3)})  # a small delta after it (a one-file snapshot)
    import numpy  # noqa: F401  (imported before measuring: its import is not the record's)

    peak, known = _peak_bytes(record.load)
    assert not [e for e in os.listdir(tmp_path / "verified") if e.startswith("delta-")]
    keys[newer] = (1, 2, 3)
    sample = random.Random(9).sample(list(keys.items()), 2000)
    assert known.differing(sample) == []
    assert known.differing([(newer, (9, 9, 9))]) == [newer]
    # Measured: 82 bytes an object (182 folded in memory).
    assert peak / n < 110, peak / n


def _mapped_kb(name: str) -> int:
    """Resident KB of this process's mappings of files named ``name`` (/proc/self/smaps)."""
    kb, inside = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()
            if head and "-" in head[0] and len(head) >= 5:  # a mapping's first line
                inside = len(head) >= 6 and head[5].endswith(name)
            elif inside and head[0] == "Rss:":
                kb += int(head[1])
    return kb


def test_a_checkout_looks_its_objects_up_in_the_mapped_base_a_span_at_a_time(tmp_path, monkeypatch):
    """The verified record's base is mapped, not read (56 bytes an object held: 306 MB for a checkout of
    2M files); a batch of lookups reads a span of its rows at a time and lets their pages go, so
    neither the process's heap nor its mapped pages grow with the record."""
    import numpy as np

    from lensvault import sorted_runs
    from lensvault.store.verified import KnownKeys

    monkeypatch.setattr(sorted_runs, "SPAN_ROWS", 32_768)  # (1.8 MB of the base read at once)
    n = 500_000
    rng = np.random.default_rng(13)
    oids = np.sort(np.frombuffer(rng.bytes(32 * n), dtype="S32"))
    keys = rng.integers(0, 1 << 40, size=(n, 3), dtype=np.uint64)
    record = VerifiedObjects(tmp_path / "verified")
    record._write_base(KnownKeys(oids, keys))
    items = [(bytes(o).hex(), tuple(int(v) for v in k)) for o, k in zip(oids.view(np.uint8).reshape(-1, 32), keys)]
    random.Random(14).shuffle(items)
    del oids, keys
    most = [0]
    drop = sorted_runs.Mapped.drop

    def measured(self: sorted_runs.Mapped) -> None:
        most[0] = max(most[0], _mapped_kb("/verified/base"))
        drop(self)

    monkeypatch.setattr(sorted_runs.Mapped, "drop", measured)
    known = record.load()
    assert known.mapped is not None
    peak, differing = _peak_bytes(lambda: known.differing(items))
    assert differing == []
    assert known.differing([(items[0][0], (1, 2, 3))]) == [items[0][0]]
    # Measured: 5 MB of the 28 MB base mapped at most (the kernel maps pages around each one read),
    # and 2.7 MB of heap (a batch of 16,384 lookups, and the bucket table: 0.5 bytes an object).
    assert 0 < most[0] < 10 * 1024, most[0]
    assert peak < 4 * 1024 * 1024, peak


def test_the_sets_verify_and_gc_hold_past_spill_rows_are_files(monkeypatch):
    """verify and gc hold the set of every object the versions list, its union with what other vaults
    need, what is left to check, and each chunk of the store's listing looked up in it. Past
    SPILL_ROWS ids (16,384 here) a set is a mapped temp file, built and combined a window at a
    time: what is held is that of a window (and of a chunk of ids as str), not 32 bytes an object."""
    import numpy as np

    from lensvault import oid_set
    from lensvault.oid_set import OidSet

    monkeypatch.setattr(oid_set, "SPILL_ROWS", 16_384)
    monkeypatch.setattr(oid_set, "_FAN_IN", 4)
    rng = np.random.default_rng(15)
    probe = [f"{random.Random(16).getrandbits(256):064x}" for _ in range(65_536)]

    def peak(n: int) -> int:
        def row_groups():  # (a files table read a row group at a time: each part let go once taken)
            for _ in range(0, n, 16_384):
                yield OidSet(np.sort(np.frombuffer(rng.bytes(32 * 16_384), dtype="S32")))

        def work() -> None:
            listed = OidSet.union(row_groups())
            other = OidSet.union(row_groups())
            both = listed | other
            left = both - other
            assert len(both) >= 2 * n and sum(both.contains(probe)) == 0
            assert sum(len(c) for c in left.chunks()) == len(left) == len(listed)

        return _peak_bytes(work)[0]

    small, big = peak(150_000), peak(600_000)
    # Measured: 27.3 and 28.1 MB (a chunk of 65,536 ids as str, the merges' windows); held, the
    # union alone grew 29 MB from one size to the other, and a union held three sets at once.
    assert big - small < 4 * 1024 * 1024, (small, big)
