"""A folder's stat-cache record in chunks: read in path order a chunk at a time, ranges, deltas,
damage, and the writer's rules. Real files in a real cache folder; chunks made small so that
a few hundred entries span many of them."""

from __future__ import annotations

import os
import random
import tracemalloc
from pathlib import Path

import pytest

from lensvault import folder_record
from lensvault.folder_record import RecordWriter, open_record
from lensvault.state import FileState

TAG = b"test-tag"


def _entry(i: int, oid: str | None = None) -> tuple:
    return (1000 + i, 10 + i, 5_000 + i, 6_000 + i, oid or f"{i:064x}", "text/plain", None, None)


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(folder_record, "CHUNK", 7)


def _write(path: Path, entries: dict, digest: str | None = "dg") -> None:
    w = RecordWriter(str(path), TAG)
    for rel in sorted(entries):
        w.add(rel, entries[rel])
    assert w.commit(digest) is not None


def _paths(n: int) -> dict:
    # Names that sort unlike their numbers, folders, and a file beside a folder of the same stem.
    out = {f"d{i % 13}/f{i:04}.bin": _entry(i) for i in range(n)}
    out.update({"d1-x.bin": _entry(9001), "d1/": _entry(9002), "d10.bin": _entry(9003), "a": _entry(9004)})
    return out


def test_every_entry_reads_back_in_path_order_and_every_range_is_exact(tmp_path, small_chunks):
    entries = _paths(300)
    _write(tmp_path / "r", entries)
    with open_record(str(tmp_path / "r"), TAG) as rec:
        assert len(rec.chunks) > 40
        assert list(rec.items()) == sorted(entries.items())
        assert rec.count == len(entries) and rec.digest == "dg"
        keys = sorted(entries)
        bounds = ["", "a", "d1", "d1/", "d1/f0014.bin", "d10", "d12/f0298.bin", "d5/", "d9/zzz", "e", "\U0010ffff"]
        bounds += random.Random(3).sample(keys, 30)
        for lo in bounds:
            for hi in [*bounds, None]:
                want = [(k, entries[k]) for k in keys if k >= lo and (hi is None or k < hi)]
                assert list(rec.items(lo, hi)) == want, (lo, hi)
        assert not rec.damaged


def test_changes_on_top_read_as_one_record_in_every_range(tmp_path, small_chunks):
    rnd = random.Random(7)
    entries = _paths(200)
    _write(tmp_path / "r", entries)
    rec = open_record(str(tmp_path / "r"), TAG)
    expected = dict(entries)
    for k in range(5):  # five segments, each with adds (before the first, after the last, between), changes, removals
        changes = {"0-first": _entry(k), "zz-last": _entry(k), f"d3/f{rnd.randrange(300):04}.bin": _entry(50 + k)}
        for rel in rnd.sample(sorted(expected), 12):
            changes[rel] = None if rnd.random() < 0.5 else _entry(77, "e" * 64)
        for rel, e in changes.items():
            if e is None:
                expected.pop(rel, None)
            else:
                expected[rel] = e
        rec.apply(changes, f"d{k}", len(expected))
    # A whole chunk removed
    whole = [p for p, _ in sorted(expected.items())][14:21]
    rec.apply(dict.fromkeys(whole), "last", len(expected) - len(whole))
    for rel in whole:
        del expected[rel]
    keys = sorted(expected)
    assert list(rec.items()) == sorted(expected.items())
    for lo in ["", "0-first", "d2", keys[20], "zz"]:
        for hi in [None, "d2", keys[40], "zz-last"]:
            assert list(rec.items(lo, hi)) == [(p, expected[p]) for p in keys if p >= lo and (hi is None or p < hi)]
    assert rec.count == len(expected) and rec.digest == "last"
    rec.close()


def test_paths_out_of_order_are_refused_and_an_aborted_writer_leaves_nothing(tmp_path):
    w = RecordWriter(str(tmp_path / "r"), TAG)
    w.add("b", _entry(1))
    with pytest.raises(ValueError, match="out of path order"):
        w.add("a", _entry(2))
    with pytest.raises(ValueError, match="out of path order"):
        w.add("b", _entry(2))  # (a path twice)
    w.abort()
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("cut", [1, 9, 100, -3])
def test_a_torn_or_foreign_record_is_a_miss(tmp_path, small_chunks, cut):
    _write(tmp_path / "r", _paths(50))
    data = (tmp_path / "r").read_bytes()
    (tmp_path / "r").write_bytes(data[:cut])  # the first `cut` bytes, or all but the last -cut
    assert open_record(str(tmp_path / "r"), TAG) is None
    _write(tmp_path / "r", _paths(50))
    assert open_record(str(tmp_path / "r"), b"another-interpreter") is None


def test_a_damaged_chunk_is_a_miss_for_its_entries_only_and_its_digest_is_not_trusted(tmp_path, small_chunks):
    entries = _paths(100)
    state = FileState(tmp_path / "cache")
    state.save_index("/data", entries, digest="dg")
    path = Path(state._path("index", "/data"))
    with open_record(str(path), state_tag()) as rec:
        _, offset, length, _ = rec.chunks[3]
        lost = list(rec.items(rec.chunks[3][0], rec.chunks[4][0]))
    data = bytearray(path.read_bytes())
    data[offset + length // 2] ^= 0xFF
    path.write_bytes(bytes(data))

    fresh = FileState(tmp_path / "cache")
    got = fresh.index("/data")
    assert got == {p: e for p, e in entries.items() if (p, e) not in lost} and len(lost) == 7
    assert fresh.index_digest("/data") is None  # what was read is not the table the digest names


def state_tag() -> bytes:
    from lensvault import state

    return state._TAG


def test_a_walk_holds_one_chunk_not_the_record(tmp_path):
    """Reading 200,000 entries in path order holds a chunk (~4 MB), where the whole record as a dict is ~100 MB."""
    n = 200_000
    w = RecordWriter(str(tmp_path / "r"), TAG)
    for i in range(n):
        w.add(f"d{i // 1000:04}/f{i:07}.jpg", (10**9 + i, 2000 + i, 1_700_000_000_000_000_000 + i,
                                               1_700_000_000_000_000_001 + i, f"{i:064x}", "image/jpeg", 640, 480))
    w.commit("dg")
    with open_record(str(tmp_path / "r"), TAG) as rec:
        tracemalloc.start()
        count = sum(1 for _ in rec.items())
        _, walk_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        whole = dict(rec.items())
        _, dict_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert count == len(whole) == n
    assert walk_peak < 12 << 20 and walk_peak * 8 < dict_peak, (walk_peak, dict_peak)


def test_a_save_too_big_for_a_delta_rewrites_the_base_from_the_old_one_and_the_changes(tmp_path, small_chunks):
    state = FileState(tmp_path / "cache")
    entries = _paths(400)
    state.save_index("/data", entries, digest="d0")
    rec = state.open_index("/data")
    changes: dict = dict.fromkeys(sorted(entries)[:40])
    changes.update({f"new/{i:03}": _entry(i) for i in range(40)})
    changes[sorted(entries)[200]] = _entry(5, "f" * 64)
    expected = {p: e for p, e in {**entries, **changes}.items() if e is not None}
    state.save_changes("/data", rec, changes, "d1", len(expected))  # 81 changes: more than a delta may hold (64)
    rec.close()
    assert not os.path.exists(state._segment("/data", 0))  # a new base, no segment
    fresh = FileState(tmp_path / "cache")
    assert fresh.index("/data") == dict(sorted(expected.items())) and fresh.index_digest("/data") == "d1"
    with fresh.open_index("/data") as again:
        assert again.count == len(expected)

    small = {sorted(expected)[7]: None}
    state2 = FileState(tmp_path / "cache")
    with state2.open_index("/data") as rec2:
        state2.save_changes("/data", rec2, small, "d2", len(expected) - 1)  # one change: a delta
    assert os.path.exists(state._segment("/data", 0))
    del expected[sorted(expected)[7]]
    assert FileState(tmp_path / "cache").index("/data") == dict(sorted(expected.items()))
