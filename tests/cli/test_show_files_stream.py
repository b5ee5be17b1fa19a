"""``dataset show --files``: the files are written out a batch at a time, and the document is
the one that was printed when every file was held first (byte for byte)."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import lv


def held_whole(vault, ref: str) -> str:
    """``dataset show REF --files --json`` as it was made before the stream: every file's dict
    (and a vision version's image ids from a dict of every image), then one ``json.dumps``."""
    from lensvault.annotations.image_ids import image_ids

    ds = vault.dataset(ref)
    rows = ds.files().to_pylist()
    images = ds.images()
    if images is not None:
        id_of = dict(zip(images.column("path").to_pylist(), image_ids(images)))
        for row in rows:
            row["image_id"] = id_of.get(row["path"])
    return json.dumps({**ds.to_dict(), "file_list": rows}, indent=2, sort_keys=False, default=str,
                      ensure_ascii=False) + "\n"


@pytest.mark.parametrize("ref", ["files@1.1.0", "shapes@1.0.1"])
def test_streamed_json_is_the_document_held_whole(world, ref):
    import lensvault

    with lensvault.open(world) as vault:
        expected = held_whole(vault, ref)
        assert vault.dataset_details(ref, files=True).to_dict() == json.loads(expected)
    r = lv("dataset", "show", ref, "--files", "--json", cwd=world)
    assert r.returncode == 0, r.stderr
    assert r.stdout == expected
    if ref.startswith("shapes"):  # (a vision version: its images carry their ids, the annotations file none)
        ids = [f["image_id"] for f in json.loads(r.stdout)["file_list"]]
        assert None in ids and sorted(i for i in ids if i is not None) == list(range(1, len(ids)))


@pytest.mark.parametrize("ref", ["files@1.1.0", "shapes@1.0.1"])
def test_many_small_batches_are_one_document(world, ref, monkeypatch, capsys):
    """Batches of 3 files (the last one short), as a big version's are of FILE_DICTS_ROWS."""
    import lensvault
    from lensvault.cli._common import emit
    from lensvault.datasets import handle

    monkeypatch.setattr(handle, "FILE_DICTS_ROWS", 3)
    with lensvault.open(world) as vault:
        details = vault.dataset_details(ref, files=True)
        assert details.file_rows is not None
        sizes = [len(rows) for rows in details.file_rows()]
        assert len(sizes) > 2 and set(sizes[:-1]) == {3}
        emit(details, True, None)
        assert capsys.readouterr().out == held_whole(vault, ref)


def test_an_empty_version(sqlite_vault, tmp_path, capsys):
    from lensvault.cli._common import emit
    from lensvault.render.datasets import show

    (tmp_path / "empty").mkdir()
    sqlite_vault.snapshot("e", tmp_path / "empty", version="1.0.0")
    details = sqlite_vault.dataset_details("e@1.0.0", files=True)
    emit(details, True, None)
    assert capsys.readouterr().out == held_whole(sqlite_vault, "e@1.0.0")
    assert json.loads(held_whole(sqlite_vault, "e@1.0.0"))["file_list"] == []
    emit(details, False, show)
    assert capsys.readouterr().out.splitlines()[-1].split() == ["path", "size", "sha256", "media", "type", "w×h"]


def test_a_damaged_files_table_prints_nothing(proj):
    """The table is read before the version's facts are written: an error, and no half a document."""
    from pathlib import Path

    ds = proj.vault.dataset("shapes@1.0.0")
    oid = ds.manifest().tables["files"]["oid"]
    path = Path(proj.vault.store.root) / oid[:2] / oid[2:]
    path.chmod(0o644)
    path.write_bytes(b"not a table")
    r = lv("dataset", "show", "shapes@1.0.0", "--files", "--json", cwd=proj.root)
    assert r.returncode == 5 and json.loads(r.stdout)["oid"] == oid  # (the error's document, alone)
    r = lv("dataset", "show", "shapes@1.0.0", "--files", cwd=proj.root)
    assert r.returncode == 5 and r.stdout == "" and oid[:12] in r.stderr


def test_a_streamed_table_keeps_its_columns_and_folds_what_comes_later(capsys):
    """Widths come from the header and the first batch; a longer cell later folds at its column."""
    from lensvault.cli._common import console
    from lensvault.render._text import print_table_stream

    print_table_stream(console(), ("path", "size"), [[("a.png", "1 KB")], [("a/much/longer/path.png", "2 KB")]],
                       right=("size",))
    assert capsys.readouterr().out.splitlines() == [
        "path   size", "a.png  1 KB", "a/muc  2 KB", "h/lon", "ger/p", "ath.p", "ng"]


def test_rows_at_reads_the_rows_of_any_span_of_row_groups(sqlite_vault):
    import pyarrow as pa

    from lensvault.datasets import files_table

    table = pa.table({"path": [f"f{i:03d}" for i in range(23)], "size": list(range(23))})
    oid = sqlite_vault.store.put_bytes(files_table.to_parquet_bytes(table, row_group_rows=5))
    for start, count in ((0, 1), (0, 23), (3, 4), (4, 2), (5, 5), (7, 11), (20, 10), (23, 5), (40, 3)):
        got = files_table.rows_at(sqlite_vault.store, oid, start, count)
        assert got.to_pylist() == table.slice(start, count).to_pylist(), (start, count)
