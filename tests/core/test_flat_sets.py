"""Sets and records that are files, not held (sorted_runs.py): a spilled OidSet and a mapped
verified-record base answer exactly as the held ones do, and verify and gc, run with every set
spilled and mapped lookups let go a few rows at a time, still find every missing and corrupt
object and keep every reachable one."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import pyarrow as pa
import pytest
import test_verify_gc as vg
from test_verified_record import _keys

from lensvault import oid_set, sorted_runs
from lensvault.oid_set import OidSet
from lensvault.store.verified import KnownKeys, VerifiedObjects

EDGE = ["00" * 32, "00" * 31 + "01", "00" * 5 + "ab" + "00" * 26, "ab" + "00" * 31, "ab" + "00" * 30 + "ff",
        "ff" * 31 + "00", "ff" * 32]


@pytest.fixture
def spilled(monkeypatch):
    """Sets of more than 4 ids spilled, runs merged 3 rows at a time, mapped lookups a span of 8 rows."""
    monkeypatch.setattr(oid_set, "SPILL_ROWS", 4)
    monkeypatch.setattr(sorted_runs, "MERGE_ROWS", 3)
    monkeypatch.setattr(sorted_runs, "SPAN_ROWS", 8)
    monkeypatch.setattr(sorted_runs, "_WINDOW", 5)


def _ids(n: int, seed: int) -> list[str]:
    return [hashlib.sha256(f"{seed}:{i}".encode()).hexdigest() for i in range(n)]


def _held(ids: list[str]) -> OidSet:
    """The set as it is held (never spilled, whatever SPILL_ROWS is)."""
    raw = np.frombuffer(bytes.fromhex("".join(sorted(set(ids)))), dtype="S32").copy()
    return OidSet(raw if len(raw) else None)


def _same(s: OidSet, want: set[str], probe: list[str]) -> None:
    ordered = sorted(want)
    assert list(s) == ordered and len(s) == len(want)
    assert [x for chunk in s.chunks(7) for x in chunk] == ordered
    assert s.contains(probe) == [p in want for p in probe]
    assert [p in s for p in probe] == [p in want for p in probe]


@pytest.mark.usefixtures("spilled")
@pytest.mark.parametrize("n", [0, 1, 4, 5, 40, 300])
def test_a_spilled_set_answers_as_the_held_one(n):
    a = _ids(n, 1) + EDGE[: min(n, len(EDGE))]
    b = _ids(n // 2, 2) + a[: n // 3] + EDGE[::2]  # overlapping, sharing edge digests
    probe = (random.Random(n).sample(a, min(n, 20)) + _ids(20, 3) + EDGE + ["", "abc", "Z" * 64, "0" * 63 + "g"]
             + ["00" * 31 + "02", "ff" * 31 + "fe"])
    # Built a row group at a time, with duplicates within and across the groups.
    groups = [a[i:i + 6] + a[i:i + 2] for i in range(0, len(a), 6)] + [[]]
    sa = OidSet.union(OidSet.from_arrow(pa.array(g, pa.string())) for g in groups)
    sb = OidSet.from_arrow(pa.chunked_array([pa.array(b[:3], pa.string()), pa.array(b[3:] + b[:2], pa.string())]))
    assert (sa._mapped is not None) == (len(set(a)) > 4) and (sb._mapped is not None) == (len(set(b)) > 4)
    for s, want in ((sa, set(a)), (sb, set(b))):
        _same(s, want, probe)
    for x, y, xs, ys in ((sa, sb, set(a), set(b)), (sb, sa, set(b), set(a)), (sa, _held(b), set(a), set(b)),
                         (_held(a), sb, set(a), set(b)), (sa, OidSet(), set(a), set()), (OidSet(), sb, set(), set(b))):
        _same(x | y, xs | ys, probe)
        _same(x - y, xs - ys, probe)
    _same(OidSet.union([sa, _held(b), OidSet(), sb]), set(a) | set(b), probe)
    _same(OidSet.of(reversed(a)), set(a), probe)


def _records(folder, keys: dict[str, tuple[int, int, int]]) -> tuple[KnownKeys, KnownKeys]:
    """(the base of ``keys`` mapped, as a checkout reads it; the same base read into memory)."""
    record = VerifiedObjects(folder)
    record._write_base(KnownKeys.of(keys))
    mapped = record.load()
    held = KnownKeys.from_bytes((folder / "base").read_bytes())
    assert mapped.mapped is not None and held is not None and held.mapped is None
    return mapped, held


@pytest.mark.usefixtures("spilled")
@pytest.mark.parametrize("n", [0, 1, 2, 9, 500])
def test_a_mapped_base_answers_as_the_held_one(tmp_path, n):
    rnd = random.Random(n)
    keys = dict(list(_keys(rnd, n).items())[:n])  # (edge digests among them: all zero, ff…00, 00ab…)
    mapped, held = _records(tmp_path / "verified", keys)
    listed = list(keys.items())
    strangers = [f"{rnd.getrandbits(256):064x}" for _ in range(20)] + [o for o in EDGE if o not in keys]
    items = (listed + [(o, (k[0] + 1, k[1], k[2])) for o, k in listed[::3]] + [(o, None) for o, _ in listed[::4]]
             + [(o, (1, 2, 3)) for o in strangers] + [(o, None) for o in strangers[:3]])
    rnd.shuffle(items)
    want = [o for o, key in items if keys.get(o) != key]  # the rule, as a dict applied it
    assert mapped.differing(items) == held.differing(items) == want
    for o in [o for o, _ in listed] + strangers:
        assert mapped.get(o) == held.get(o) == keys.get(o)


def test_verify_and_gc_with_every_set_spilled(spilled, store_vault, tmp_path):
    """verify names every corrupt and missing object, gc keeps every reachable one and deletes
    every orphan, with the sets spilled and the store listing looked up in them."""
    vault, v1, v2 = vg._two_versions(store_vault, tmp_path)
    src = tmp_path / "many"
    src.mkdir()
    for i in range(60):
        (src / f"f{i:02d}.txt").write_text(f"file {i}")
    vault.snapshot("many", src, version="1.0.0")
    needed = vg.oids_in_store(vault)
    orphans = {vault.store.put_bytes(f"orphan {i}".encode()) for i in range(9)}
    vault.store.release_pins()
    plan = vault.gc(grace_seconds=0, force=True)
    assert {o for o, _ in plan.objects} == orphans and plan.kept == len(needed)
    assert plan.execute()["deleted"] == len(orphans)
    assert needed <= vg.oids_in_store(vault) and not orphans & vg.oids_in_store(vault)
    report = vault.verify()
    assert report.ok and report.checked == len(vg.oids_in_store(vault))
    corrupt, missing = vg._corrupt_and_lose(vault, v1, v2)
    report = vault.verify()
    assert {c["oid"] for c in report.corrupt} == corrupt and {m["oid"] for m in report.missing} == missing
    assert "ds@1.0.0" in {m["oid"]: m for m in report.missing}[vg._oid_of(v1, "c/d.txt")]["needed_by"]
    unreferenced = vault.store.put_bytes(b"nobody's, damaged")
    vg.damage_object(vault, unreferenced)
    assert unreferenced in {c["oid"] for c in vault.verify().corrupt}
