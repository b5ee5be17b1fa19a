"""The record of verified objects (store/verified.py): a base of sorted arrays (56 bytes an
object, no Python object per entry) and delta files over it; what it answers is what the
dict it replaced answered, whatever the form the base was written in."""

from __future__ import annotations

import os
import random

import numpy as np

from lensvault.store.verified import _FOLD_AT, _SMALL_DELTA, KnownKeys, VerifiedObjects, _encode, untrusted


def _oids(rnd: random.Random, n: int) -> list[str]:
    return [f"{rnd.getrandbits(256):064x}" for _ in range(n)]


def _keys(rnd: random.Random, n: int) -> dict[str, tuple[int, int, int]]:
    # Inodes up to 2**64 - 1, negative mtimes (before 1970), digests with zero bytes at either end.
    out = {o: (rnd.getrandbits(64), rnd.randint(0, 10**9), rnd.randint(-(10**18), 2 * 10**18)) for o in _oids(rnd, n)}
    out["00" * 32] = ((1 << 64) - 1, 0, -5)
    out["ff" * 31 + "00"] = (1, 2, 3)
    out["00" + "ab" * 31] = (4, 5, 6)
    return out


def test_a_base_in_the_old_form_is_read_and_rewritten_as_arrays(tmp_path):
    rnd = random.Random(1)
    keys = _keys(rnd, 500)
    folder = tmp_path / "verified"
    folder.mkdir()
    (folder / "base").write_bytes(_encode(keys))  # what the record was before: a marshal dict
    known = VerifiedObjects(folder).load()
    assert isinstance(known.oids, np.ndarray) and len(known.oids) == len(keys)
    assert (folder / "base").read_bytes().startswith(b"lensvault-verified-2\n")
    again = VerifiedObjects(folder).load()  # the new form, read as it is
    for k in (known, again):
        assert all(k.get(o) == key for o, key in keys.items())
        assert k.differing(keys.items()) == []


def test_an_empty_record_is_written_and_read():
    empty = KnownKeys.from_bytes(KnownKeys().to_bytes())
    assert empty is not None and len(empty.oids) == 0 and empty.differing([("ab" * 32, (1, 2, 3))]) == ["ab" * 32]


def test_lookups_of_a_batch_answer_as_the_dict_did(tmp_path):
    rnd = random.Random(2)
    keys = _keys(rnd, 300)
    known = KnownKeys.of(keys)
    listed = list(keys.items())
    stranger = _oids(rnd, 1)[0]
    items = [(listed[0][0], listed[0][1]), (listed[1][0], (1, 1, 1)), (listed[2][0], None), (stranger, None),
             (stranger, (1, 2, 3)), ("00" * 32, ((1 << 64) - 1, 0, -5)), ("00" * 32, (0, 0, -5))]
    want = [o for o, key in items if keys.get(o) != key]  # the rule, as the dict applied it
    assert sorted(known.differing(items)) == sorted(want)
    assert KnownKeys().differing(items) == [o for o, key in items if key is not None]


def test_deltas_over_the_base_and_their_fold(tmp_path):
    rnd = random.Random(3)
    keys = _keys(rnd, 200)
    folder = tmp_path / "verified"
    record = VerifiedObjects(folder)
    record.add(keys)
    record.load()  # (one delta: not folded yet)
    listed = list(keys)
    new = _oids(rnd, 1)[0]
    record.forget([listed[0]])
    record.add({new: (9, 9, 9), listed[1]: (7, 7, 7)})
    want = dict(keys)
    del want[listed[0]]
    want.update({new: (9, 9, 9), listed[1]: (7, 7, 7)})
    for _ in range(_FOLD_AT):  # enough deltas to be folded into a new base
        record.add({(o := _oids(rnd, 1)[0]): (1, 2, 3)})
        want[o] = (1, 2, 3)
    known = record.load()
    assert not [e for e in os.listdir(folder) if e.startswith("delta-")] and known.changes == {}
    for k in (known, record.load()):
        assert all(k.get(o) == key for o, key in want.items()) and k.get(listed[0]) is None
        assert k.differing(want.items()) == [] and k.differing([(listed[0], keys[listed[0]])]) == [listed[0]]


def test_a_damaged_base_is_a_miss_and_untrusted_hashes_what_it_does_not_vouch_for(sqlite_vault):
    vault = sqlite_vault
    good = vault.store.put_bytes(b"good bytes")
    folder = vault.dir / "cache" / "verified-test"
    record = VerifiedObjects(folder)
    key = (1, 2, 3)
    record.add({good: key})
    record.load()
    record._write_base(record.load().folded())
    blob = bytearray((folder / "base").read_bytes())
    blob[-1] ^= 1
    (folder / "base").write_bytes(bytes(blob))
    for e in os.listdir(folder):
        if e.startswith("delta-"):
            os.unlink(folder / e)
    known = record.load()
    assert known.get(good) is None  # a miss, never a wrong answer
    missing = "ab" * 32
    assert untrusted(vault.store, [(good, key), (missing, key)], known) == {missing: "missing"}


def test_many_keys_are_written_as_arrays_and_folded_by_the_next_reader(tmp_path):
    """A snapshot or verify of many objects adds them in the base's form: no reader ever holds them
    as a dict, and the first one folds them into the base (old-form dict deltas that are big too)."""
    rnd = random.Random(4)
    folder = tmp_path / "verified"
    record = VerifiedObjects(folder)
    small = _keys(rnd, 10)
    record.add(small)
    many = _keys(rnd, _SMALL_DELTA + 5)
    many[next(iter(small))] = (5, 5, 5)  # newer than the small delta's key: wins
    record.add(many)
    deltas = [folder / e for e in os.listdir(folder) if e.startswith("delta-")]
    assert sorted(d.read_bytes()[:21] for d in deltas) == [b"lensvault-verified-1\n", b"lensvault-verified-2\n"]
    first = next(d for d in deltas if d.read_bytes().startswith(b"lensvault-verified-1"))
    os.utime(first, ns=(1, 1))  # (the small one is the older, as written: whatever the clock's tick)
    known = record.load()
    assert not [e for e in os.listdir(folder) if e.startswith("delta-")]
    want = {**small, **many}
    assert all(known.get(o) == key for o, key in want.items()) and known.differing(want.items()) == []
    big_dict = _keys(rnd, 4 * _SMALL_DELTA + 1)
    (folder / "delta-old-form").write_bytes(_encode(big_dict))  # as an older version wrote it
    assert all(record.load().get(o) == key for o, key in big_dict.items())
    assert not (folder / "delta-old-form").exists()


def test_a_fold_merges_the_base_and_the_deltas_as_sorted_runs_a_window_at_a_time(tmp_path, monkeypatch):
    """The fold on disk (runs merged 5 rows of each at a time here) answers as the deltas applied in
    order do: the newest key of an object wins, a forget removes it, whatever the run it is in; an
    unsorted big delta (as written before they were sorted) is read too."""
    from lensvault import sorted_runs
    from lensvault.store import verified

    monkeypatch.setattr(sorted_runs, "MERGE_ROWS", 5)
    rnd = random.Random(11)
    folder = tmp_path / "verified"
    record = VerifiedObjects(folder)
    want: dict[str, tuple[int, int, int]] = {}
    tick = 1

    def written() -> None:  # (deltas are applied in the order of their mtimes: make it the order written)
        nonlocal tick
        for e in os.listdir(folder):
            if e.startswith("delta-") and e not in dated:
                os.utime(folder / e, ns=(tick, tick))
                dated.add(e)
                tick += 1

    dated: set[str] = set()
    first = _keys(rnd, _SMALL_DELTA + 40)
    record.add(first)
    written()
    want.update(first)
    record.load()  # folded: the base
    assert (folder / "base").exists() and not [e for e in os.listdir(folder) if e.startswith("delta-")]
    old = list(first)
    second = {**_keys(rnd, _SMALL_DELTA + 7), **dict.fromkeys(old[:30], (11, 12, 13))}
    record.add(second)  # big, sorted, overlapping the base
    written()
    want.update(second)
    record.forget(old[30:35])
    written()
    for o in old[30:35]:
        del want[o]
    record.add({old[30]: (5, 6, 7), old[40]: (8, 9, 10)})  # small, after the forget: back, and newer
    written()
    want.update({old[30]: (5, 6, 7), old[40]: (8, 9, 10)})
    unsorted = dict(reversed(list(_keys(rnd, _SMALL_DELTA + 3).items())))
    unsorted[old[41]] = (14, 15, 16)
    blob = b"".join(bytes(p) for p in verified._framed(
        len(unsorted), bytes.fromhex("".join(unsorted)),
        np.array([v & verified._U64 for k in unsorted.values() for v in k], dtype="<u8").tobytes()))
    (folder / "delta-unsorted").write_bytes(blob)
    written()
    want.update(unsorted)
    record.forget([old[42]])
    written()
    del want[old[42]]
    known = record.load()
    assert not [e for e in os.listdir(folder) if e.startswith("delta-")] and known.changes == {}
    assert len(known.oids) == len(want)
    assert bool((known.oids[:-1] < known.oids[1:]).all())  # sorted, each object once
    for k in (known, record.load()):
        assert all(k.get(o) == key for o, key in want.items())
        assert k.get(old[31]) is None and k.get(old[42]) is None
        assert k.differing(want.items()) == []


def test_the_bucket_table_counted_a_window_at_a_time_is_the_whole_count():
    """``_bucket_starts`` fills the table a window of sorted digests at a time (buckets spanning two
    windows, empty ones, equal prefixes): the same table as counting every prefix at once."""
    rng = np.random.default_rng(12)
    for n in (1, 2, 1000, 65_536, 65_537, 140_000):
        oids = np.sort(np.frombuffer(rng.bytes(32 * n), dtype="S32")).copy()
        if n > 2:
            oids[1] = oids[0]
        shift, starts = KnownKeys(oids, np.zeros((n, 3), dtype=np.uint64))._bucket_starts()
        prefixes = oids.view(">u8").reshape(-1, 4)[:, 0].astype(np.uint64) >> np.uint64(shift)
        want = np.zeros((1 << (64 - shift)) + 1, dtype=np.int64)
        np.cumsum(np.bincount(prefixes.astype(np.int64), minlength=1 << (64 - shift)), out=want[1:])
        assert (starts == want).all(), n
