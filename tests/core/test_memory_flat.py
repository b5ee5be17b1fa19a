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
