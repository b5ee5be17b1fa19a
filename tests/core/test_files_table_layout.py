"""Files tables in row groups (issue 16): written cut, read a group at a time, old ones still right.

A files table is written in row groups of ``files_table.ROW_GROUP_ROWS`` rows so ``diff``
can walk it in bounded memory; tables written before are one big group and stay as they are
(a written table is never rewritten). Here the group size is made tiny so a few files span
several groups; ``None`` writes the old layout (one group, pyarrow's default).
"""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _lvtest import damage_object, lose_object, settle, write_files

from lensvault.datasets import files_table
from lensvault.errors import IntegrityError, UsageError

FILES = {f"d{i % 3}/f{i:02d}.txt": f"content {i}" for i in range(11)}


def _row_groups(vault, ref: str) -> list[int]:
    oid = vault.dataset(ref).manifest().tables["files"]["oid"]
    meta = pq.ParquetFile(pa.BufferReader(vault.store.read_bytes(oid))).metadata
    return [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]


def _layout(monkeypatch, rows: int | None) -> None:
    monkeypatch.setattr(files_table, "ROW_GROUP_ROWS", rows)
    monkeypatch.setattr(files_table, "LAYOUTS", (rows, None))


@pytest.fixture
def old_and_new(store_vault, tmp_path, monkeypatch):
    """ds@1.0.0 written in the old layout (one group), ds@1.1.0 in groups of 4 rows, with one
    file modified, one removed, one renamed and one added between them."""
    vault = store_vault
    src = write_files(tmp_path / "src", FILES)
    settle()
    _layout(monkeypatch, None)
    vault.snapshot("ds", src, version="1.0.0", link="copy")
    (src / "d0/f00.txt").write_text("changed")
    (src / "d1/f01.txt").unlink()
    (src / "d2/f02.txt").rename(src / "moved.txt")
    (src / "new.txt").write_text("new file")
    settle()
    _layout(monkeypatch, 4)
    vault.snapshot("ds", src, version="1.1.0", link="copy")
    return vault, src


def test_new_tables_are_written_in_row_groups_and_old_ones_are_read_as_they_are(old_and_new):
    vault, _ = old_and_new
    assert _row_groups(vault, "ds@1.0.0") == [11]
    assert _row_groups(vault, "ds@1.1.0") == [4, 4, 3]
    # Read a group (the old table: a batch of as many rows) at a time: the same rows as the whole table.
    for ref in ("ds@1.0.0", "ds@1.1.0"):
        ds = vault.dataset(ref)
        got = list(files_table.batches(vault.store, ds.manifest().tables["files"]["oid"], rows=4))
        assert [b.num_rows for b in got] == [4, 4, 3]
        assert pa.Table.from_batches(got).to_pylist() == ds.files().to_pylist()


def test_diff_across_layouts_and_row_groups(old_and_new):
    vault, _ = old_and_new
    d = vault.diff("ds@1.0.0", "ds@1.1.0")
    assert (d.added, d.removed, d.modified, d.renamed) == (["new.txt"], ["d1/f01.txt"], ["d0/f00.txt"],
                                                           [("d2/f02.txt", "moved.txt")])
    assert d.unchanged == 8
    back = vault.diff("ds@1.1.0", "ds@1.0.0")
    assert (back.added, back.removed, back.modified) == (["d1/f01.txt"], ["new.txt"], ["d0/f00.txt"])
    assert back.bytes["delta"] == -d.bytes["delta"] == sum(map(len, FILES.values())) - d.bytes["b"]


def test_the_layout_does_not_change_a_versions_identity(store_vault, tmp_path, monkeypatch):
    """The snapshot id and the files digest hash the rows, not the Parquet bytes: the same
    content written in the new layout is still recognized as the same."""
    vault = store_vault
    src = write_files(tmp_path / "src", FILES)
    settle()
    _layout(monkeypatch, None)
    old = vault.snapshot("ds", src, version="1.0.0", link="copy")
    _layout(monkeypatch, 4)
    with pytest.raises(UsageError, match="nothing changed"):
        vault.snapshot("ds", src, version="1.0.1", link="copy")
    with pytest.raises(UsageError, match="nothing changed"):
        vault.snapshot("ds", src, bump="auto", link="copy")
    again = vault.snapshot("ds", src, version="1.0.1", link="copy", force=True)
    other = vault.snapshot("other", src, version="1.0.0", link="copy")  # written anew, in groups of 4
    assert _row_groups(vault, "other@1.0.0") == [4, 4, 3]
    assert old.snapshot_id == again.snapshot_id == other.snapshot_id
    digests = {ds.manifest().tables["files"]["digest"] for ds in (old, again, other)}
    assert len(digests) == 1
    assert not vault.diff("ds@1.0.0", "other@1.0.0").changed


def test_verify_repair_rebuilds_a_table_in_the_layout_it_was_written_in(old_and_new):
    vault, _ = old_and_new
    tables = [vault.dataset(r).manifest().tables["files"]["oid"] for r in ("ds@1.0.0", "ds@1.1.0")]
    for oid in tables:
        lose_object(vault, oid)  # rebuilt from the rows the stat cache keeps
    report = vault.verify(repair=True)
    assert {r["oid"] for r in report.repaired} == set(tables)
    assert vault.verify().ok
    assert _row_groups(vault, "ds@1.0.0") == [11] and _row_groups(vault, "ds@1.1.0") == [4, 4, 3]


def test_a_damaged_table_stops_the_streamed_diff_before_any_row_is_used(old_and_new):
    vault, _ = old_and_new
    oid = vault.dataset("ds@1.1.0").manifest().tables["files"]["oid"]
    damage_object(vault, oid, offset=200)
    with pytest.raises(IntegrityError, match="corrupt") as e:
        vault.diff("ds@1.0.0", "ds@1.1.0")
    assert e.value.fix and "verify --repair" in e.value.fix


def test_bump_auto_reads_the_previous_table_in_either_layout(store_vault, tmp_path, monkeypatch):
    vault = store_vault
    src = write_files(tmp_path / "src", FILES)
    settle()
    _layout(monkeypatch, None)
    vault.snapshot("ds", src, version="1.0.0", link="copy")
    _layout(monkeypatch, 4)
    (src / "d0/f03.txt").write_text("new bytes")  # changed bytes only: PATCH
    settle()
    assert vault.snapshot("ds", src, bump="auto", link="copy").version == "1.0.1"
    (src / "added.txt").write_text("added")  # an added file: MINOR
    settle()
    assert vault.snapshot("ds", src, bump="auto", link="copy").version == "1.1.0"


def test_diff_with_an_empty_version(store_vault, tmp_path):
    vault = store_vault
    empty = tmp_path / "empty"
    empty.mkdir()
    vault.snapshot("e", empty, version="1.0.0", link="copy")
    vault.snapshot("f", write_files(tmp_path / "src", FILES), version="1.0.0", link="copy")
    d, back = vault.diff("e@1.0.0", "f@1.0.0"), vault.diff("f@1.0.0", "e@1.0.0")
    assert d.added == back.removed == sorted(FILES) and d.unchanged == back.unchanged == 0
    assert d.bytes["b"] == back.bytes["a"] == sum(map(len, FILES.values())) and d.bytes["a"] == 0
    assert not vault.diff("e@1.0.0", "e@1.0.0").changed


def test_a_spooled_table_is_the_table_of_its_rows_byte_for_byte(tmp_path, monkeypatch):
    """Rows fed one at a time, written a row group at a time: the same Parquet bytes, digest,
    counts and sums as the table built from the same rows in memory."""
    from lensvault.datasets import files_table
    from lensvault.store.local import LocalObjectStore

    monkeypatch.setattr(files_table, "ROW_GROUP_ROWS", 5)
    monkeypatch.setattr(files_table, "_SPOOL_ROWS", 3)  # (gathered 3 rows at a time into groups of 5)
    store = LocalObjectStore(tmp_path / "store")
    store.create()
    rows = [(f"d{i % 4}/f{i:03}.{'png' if i % 3 else 'txt'}", f"{i:064x}", 100 + i,
             "image/png" if i % 3 else "text/plain", 8 if i % 3 else None, 6 if i % 3 else None) for i in range(23)]
    rows.sort()
    spooled = files_table.SpooledRows(store)
    for path, oid, size, mt, w, h in rows:
        spooled.add(path, oid, size, mt, w, h)
    spooled.finish()
    paths, oids, sizes, mts, ws, hs = map(list, zip(*rows))
    table = files_table.build(paths, sizes, oids, mts, ws, hs)
    assert spooled.digest() == files_table.rows_digest(paths, oids, sizes)
    assert (spooled.num_rows, spooled.total_bytes()) == (23, sum(sizes))
    assert spooled.media_type_counts() == {"image/png": mts.count("image/png"), "text/plain": mts.count("text/plain")}
    assert spooled.table().equals(table)
    oid = spooled.stored_oid(store)
    assert store.read_bytes(oid) == files_table.to_parquet_bytes(table, row_group_rows=5)
    assert [b.num_rows for b in files_table.batches(store, oid)] == [5, 5, 5, 5, 3]
    spooled.abandon_store()
    assert not os.path.exists(spooled._spool)  # (the spool is gone; the object stays)
    assert store.has(oid)

    out_of_order = files_table.SpooledRows(store)
    out_of_order.add("b", "0" * 64, 1, "text/plain", None, None)
    with pytest.raises(ValueError, match="out of path order"):
        out_of_order.add("a", "0" * 64, 1, "text/plain", None, None)
    out_of_order.abandon_store()
    assert not os.path.exists(out_of_order._spool)


def test_an_empty_spooled_table_is_the_empty_table(tmp_path):
    from lensvault.datasets import files_table
    from lensvault.store.local import LocalObjectStore

    store = LocalObjectStore(tmp_path / "store")
    store.create()
    spooled = files_table.SpooledRows(store).finish()
    empty = files_table.build([], [], [], [], [], [])
    assert spooled.digest() == files_table.rows_digest([], [], []) and spooled.num_rows == 0
    oid = spooled.stored_oid(store)
    assert store.read_bytes(oid) == files_table.to_parquet_bytes(empty, row_group_rows=files_table.ROW_GROUP_ROWS)
    spooled.abandon_store()
