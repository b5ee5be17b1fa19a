"""datasets/merged_rows.py: a stored files table with changes merged in, a row group at a time, is
the table of the merged rows — its rows, digest and Parquet bytes — wherever the changes fall:
before the first row, after the last, at a group's ends, between groups, inside one, many in
one group, a group emptied. And a re-snapshot uses it, with what it cannot read left to the record."""

from __future__ import annotations

import os
import random

import pytest
from _lvtest import settle, tmp_leftovers, write_files

from lensvault.datasets import files_table, merged_rows
from lensvault.datasets.merged_rows import MergedRows, merged_tables
from lensvault.store import open_store


def _row(path: str, tag: str) -> tuple[int, str, str, int | None, int | None]:
    import hashlib

    image = hash(path) % 3 == 0
    return (len(path + tag), hashlib.sha256((path + tag).encode()).hexdigest(),
            "image/png" if image else "text/plain", 7 if image else None, 5 if image else None)


def _stored(store, rows: dict, group: int) -> str:
    paths = sorted(rows)
    cols = list(zip(*(rows[p] for p in paths))) or [(), (), (), (), ()]
    table = files_table.build(paths, *cols)
    return store.put_bytes(files_table.to_parquet_bytes(table, row_group_rows=group))


def _expected(base: dict, changes: list) -> files_table.FileRows:
    rows = dict(base)
    for path, row in changes:
        if row is None:
            rows.pop(path, None)
        else:
            rows[path] = row
    paths = sorted(rows)
    cols = list(zip(*(rows[p] for p in paths))) or [(), (), (), (), ()]
    return files_table.FileRows(paths, *cols)


@pytest.fixture
def store(tmp_path):
    s = open_store(tmp_path / "objects")
    s.create()
    return s


def _check(store, base: dict, changes: list, group: int, monkeypatch) -> None:
    monkeypatch.setattr(files_table, "ROW_GROUP_ROWS", 4)  # the written table's groups: many, small
    oid = _stored(store, base, group)
    merged = MergedRows(store, oid, sorted(changes))
    want = _expected(base, changes)
    got = merged.table()
    assert got.to_pylist() == want.table().to_pylist()
    assert merged.digest() == want.digest() == files_table.rows_digest(want.paths, want.oids, want.sizes)
    assert merged.num_rows == len(want) and merged.total_bytes() == want.total_bytes()
    assert merged.media_type_counts() == want.media_type_counts()
    # The Parquet object is the one the rows written one by one make: the same bytes, the same oid.
    spooled = files_table.SpooledRows(store)
    for row in zip(want.paths, want.oids, want.sizes, want.media_types, want.widths, want.heights):
        spooled.add(*row)
    spooled.finish()
    assert merged.stored_oid(store) == spooled.stored_oid(store)
    assert spooled.digest() == want.digest()
    spooled.abandon_store()


BASE = {f"d{i // 10}/f{i:03}": _row(f"d{i // 10}/f{i:03}", "") for i in range(30)}


@pytest.mark.parametrize("case", [
    [("a-first", _row("a-first", "new"))],  # before every row
    [("z-last", _row("z-last", "new"))],  # after every row
    [("d0/f000", _row("d0/f000", "edit"))],  # the first row replaced
    [("d2/f029", None)],  # the last row removed
    [("d0/f006", None), ("d0/f006x", _row("d0/f006x", "new"))],  # a group's last row gone, one after it
    [("d0/f003", None), ("d0/f004", None), ("d0/f005", None), ("d0/f006", None)],  # a group emptied
    [("d0/f0065", _row("d0/f0065", "between"))],  # between two groups
    [(p, _row(p, "all")) for p in BASE],  # every row replaced
    [(p, None) for p in BASE],  # every row removed
    [("d1/f015", _row("d1/f015", "e")), ("d1/f015a", _row("d1/f015a", "n")), ("d1/f016", None),
     ("d1/f017", _row("d1/f017", "e")), ("d1/nope", None)],  # many in one group; a path never there
    [],
], ids=["first", "last", "replace-first", "remove-last", "group-end", "group-emptied", "between",
        "all-replaced", "all-removed", "many", "none"])
@pytest.mark.parametrize("group", [7, 30, 1000])
def test_changes_anywhere_make_the_merged_table(store, monkeypatch, case, group):
    _check(store, BASE, case, group, monkeypatch)


@pytest.mark.parametrize("seed", range(12))
def test_random_changes_make_the_merged_table(store, monkeypatch, seed):
    rng = random.Random(seed)
    names = [f"{rng.choice('abc')}/{rng.randrange(100):02}" for _ in range(rng.randrange(0, 60))]
    base = {p: _row(p, "") for p in names}
    changes: dict = {}
    for _ in range(rng.randrange(0, 25)):
        p = rng.choice([*names, f"{rng.choice('abcd')}/{rng.randrange(100):02}"]) if names else "a/1"
        changes[p] = None if rng.random() < 0.4 else _row(p, str(rng.random()))
    _check(store, base, list(changes.items()), rng.choice([1, 3, 8, 64]), monkeypatch)


def test_unsorted_changes_are_refused(store):
    oid = _stored(store, BASE, 7)
    with pytest.raises(ValueError, match="sorted"):
        MergedRows(store, oid, [("b", None), ("a", None)])
    with pytest.raises(ValueError, match="sorted"):
        MergedRows(store, oid, [("a", None), ("a", None)])
    assert list(merged_tables(store, oid, [])) != []


def _spy(monkeypatch) -> list[int]:
    made: list[int] = []
    real = MergedRows.__init__

    def init(self, store, base, changes):
        made.append(len(changes))
        real(self, store, base, changes)

    monkeypatch.setattr(merged_rows.MergedRows, "__init__", init)
    return made


def _replace(path, text: str) -> None:
    """A new file under the old name, as an editor saves it (written in place, a hardlinked file
    would change its object too: that is another test's case)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _is_first_snapshot(tmp_path, name: str, src, version) -> None:
    """``version``'s files table is the one a first snapshot of ``src`` writes (in another vault)."""
    import lensvault

    other = lensvault.init(tmp_path / name)
    try:
        first = other.snapshot("ds", src, version="1.0.0", link="copy")
        assert version.manifest().tables["files"] == first.manifest().tables["files"]
        assert version.manifest().counts == first.manifest().counts
    finally:
        other.close()


@pytest.mark.parametrize("link", ["hardlink", "copy"])
def test_a_big_resnapshot_merges_into_the_last_table(sqlite_vault, tmp_path, monkeypatch, link):
    """Past SPOOL_FROM files, a re-snapshot with changes merges them into the latest version's table:
    the table is the one a first snapshot of the same folder writes (in another vault), and a
    damaged or missing last table is left for the record to make the rows from."""
    monkeypatch.setattr(files_table, "SPOOL_FROM", 10)
    monkeypatch.setattr(files_table, "ROW_GROUP_ROWS", 8)
    vault = sqlite_vault
    src = write_files(tmp_path / "src", {f"d{i % 4}/f{i:03}.txt": f"file {i}" for i in range(50)})
    settle()
    vault.snapshot("ds", src, version="1.0.0", link=link)
    made = _spy(monkeypatch)
    _replace(src / "d0" / "f000.txt", "changed")  # the first row
    (src / "d3" / "f047.txt").unlink()
    (src / "d1" / "f021x.txt").write_text("added")
    (src / "zz.txt").write_text("after every row")
    settle()
    v2 = vault.snapshot("ds", src, version="1.0.1", link=link)
    assert made == [4]
    _is_first_snapshot(tmp_path, "other", src, v2)
    assert vault.status("ds@1.0.1", src).clean and vault.verify().ok

    # The last table lost: the rows come from the record, and the version is the same.
    table = v2.manifest().tables["files"]["oid"]
    path = vault.store.oid_to_path(table)
    os.chmod(path, 0o644)
    path.write_bytes(b"not parquet")
    _replace(src / "d2" / "f002.txt", "changed again")
    settle()
    v3 = vault.snapshot("ds", src, version="1.0.2", link=link)
    assert made == [4, 1]
    _is_first_snapshot(tmp_path, "other2", src, v3)
    assert vault.status("ds@1.0.2", src).clean
    report = vault.verify()
    assert not report.ok  # (the damaged table of 1.0.1 is reported, not hidden)
    assert tmp_leftovers(vault) == []

    # The last table gone from the store altogether: the same.
    table = v3.manifest().tables["files"]["oid"]
    os.chmod(vault.store.oid_to_path(table), 0o644)
    os.unlink(vault.store.oid_to_path(table))
    _replace(src / "d1" / "f001.txt", "and again")
    settle()
    v4 = vault.snapshot("ds", src, version="1.0.3", link=link)
    assert made == [4, 1, 1]
    _is_first_snapshot(tmp_path, "other3", src, v4)
    assert vault.status("ds@1.0.3", src).clean and tmp_leftovers(vault) == []


@pytest.mark.parametrize("link", ["hardlink", "copy"])
def test_a_folder_mostly_changed_is_read_whole_as_a_stream(sqlite_vault, tmp_path, monkeypatch, link):
    """Past CHANGED_HELD changed files the walk stops holding them, and the folder is read whole as
    a stream (new_folder): the version is the folder, its record too (the next re-snapshot works
    on the changes alone again), and fewer changes than that never take this way."""
    from lensvault.datasets import ingest, new_folder

    monkeypatch.setattr(ingest, "CHANGED_HELD", 12)
    monkeypatch.setattr(files_table, "SPOOL_FROM", 10)
    vault = sqlite_vault
    src = write_files(tmp_path / "src", {f"d{i % 3}/f{i:03}.txt": f"file {i}" for i in range(6000)})
    settle()
    vault.snapshot("ds", src, version="1.0.0", link=link)
    streamed: list[int] = []
    real = new_folder.ingest_new_folder
    monkeypatch.setattr(new_folder, "ingest_new_folder", lambda *a, **k: (streamed.append(1), real(*a, **k))[1])
    for i in range(0, 6000, 7):  # more than 12 changed, in both halves of the walk
        _replace(src / f"d{i % 3}" / f"f{i:03}.txt", f"changed {i}")
    (src / "d1" / "f001.txt").unlink()
    settle()
    v2 = vault.snapshot("ds", src, version="1.0.1", link=link)
    assert streamed == [1]
    _is_first_snapshot(tmp_path, "other", src, v2)
    assert vault.status("ds@1.0.1", src).clean and vault.verify().ok
    made = _spy(monkeypatch)
    streamed.clear()  # (the other vault's first snapshot was a stream too)
    _replace(src / "d2" / "f002.txt", "once more")  # a few: the changes alone, merged into the table
    settle()
    v3 = vault.snapshot("ds", src, version="1.0.2", link=link)
    assert streamed == [] and made == [1]
    assert vault.status("ds@1.0.2", src).clean and vault.verify().ok
    assert v3.manifest().counts["files"] == 5999 and tmp_leftovers(vault) == []
    for p in sorted((src / "d0").iterdir())[:30]:  # many gone (the walk counts what is gone too)
        p.unlink()
    v4 = vault.snapshot("ds", src, version="1.0.3", link=link)
    assert streamed == [1] and v4.manifest().counts["files"] == 5969
    assert vault.status("ds@1.0.3", src).clean and vault.verify().ok
