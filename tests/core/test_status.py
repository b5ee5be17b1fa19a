"""Status: what in a folder differs from a dataset version (on each object store: ``store_vault``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _lvtest import settle, write_files

from lensvault.errors import NotFound, UsageError


@pytest.fixture
def checked_out(store_vault, tmp_path):
    src = write_files(tmp_path / "src", {"a.txt": "a", "b.txt": "b", "d/c.txt": "c"})
    store_vault.snapshot("ds", src, version="1.0.0")
    store_vault.checkout("ds@1.0.0", tmp_path / "out")
    return tmp_path / "out"


def test_a_fresh_checkout_is_clean_without_naming_the_ref(store_vault, checked_out):
    st = store_vault.status(None, checked_out)
    assert st.clean and st.ref == "ds@1.0.0" and st.unchanged == 3
    assert st.to_dict()["clean"] is True


def test_status_uses_the_cwd_by_default(store_vault, checked_out, monkeypatch):
    monkeypatch.chdir(checked_out)
    assert store_vault.status().clean


def test_added_removed_and_modified_are_reported(store_vault, checked_out):
    (checked_out / "a.txt").write_text("A!")
    (checked_out / "b.txt").unlink()
    write_files(checked_out, {"new/e.txt": "e"})
    st = store_vault.status(None, checked_out)
    assert (st.added, st.removed, st.modified, st.unchanged) == (["new/e.txt"], ["b.txt"], ["a.txt"], 1)
    assert not st.clean
    d = st.to_dict()
    assert d["clean"] is False and d["folder"] == str(checked_out)


def test_a_rename_is_an_add_and_a_remove(store_vault, checked_out):
    os.rename(checked_out / "a.txt", checked_out / "z.txt")
    st = store_vault.status("ds@1.0.0", checked_out)
    assert (st.added, st.removed, st.modified) == (["z.txt"], ["a.txt"], [])


def test_status_of_a_plain_folder_needs_a_ref(store_vault, tmp_path):
    write_files(tmp_path / "plain", {"a.txt": "a"})
    with pytest.raises(UsageError) as ei:
        store_vault.status(None, tmp_path / "plain")
    assert "NAME@VERSION" in ei.value.fix and ei.value.where == str(tmp_path / "plain")


def test_status_against_an_unknown_version_lists_the_known_ones(store_vault, checked_out):
    with pytest.raises(NotFound) as ei:
        store_vault.status("ds@2.0.0", checked_out)
    assert "1.0.0" in ei.value.fix


def test_status_of_a_fresh_checkout_does_not_rehash(store_vault, tmp_path, monkeypatch):
    """Checkout remembers the stats of what it wrote, so the first status is a stat walk."""
    import lensvault.datasets.ingest_worker as ingest_worker

    src = write_files(tmp_path / "src", {f"f{i}.txt": f"{i}" for i in range(30)})
    store_vault.snapshot("ds", src, version="1.0.0")
    store_vault.checkout("ds@1.0.0", tmp_path / "out", link="copy")
    hashed = []
    real = ingest_worker.hash_one
    monkeypatch.setattr(ingest_worker, "hash_one", lambda p, *rest: (hashed.append(p), real(p, *rest))[1])
    assert store_vault.status(None, tmp_path / "out").clean
    assert hashed == []
    (tmp_path / "out" / "f3.txt").write_text("changed")
    assert store_vault.status(None, tmp_path / "out").modified == ["f3.txt"]
    assert hashed == [str(tmp_path / "out" / "f3.txt")]


def test_a_snapshotted_folder_that_holds_the_manifests_is_clean(tmp_path):
    """`lensvault init` at the repo root and `snapshot ... data`: data/manifests/ is LensVault's own."""
    import lensvault

    root = tmp_path / "repo"
    data = write_files(root / "data", {"raw/a.txt": "a", "raw/b.txt": "b"})
    vault = lensvault.init(root)
    try:
        vault.snapshot("ds", data, version="1.0.0")
        assert (vault.manifests_dir / "ds" / "1.0.0.json").is_file()  # inside data/
        st = vault.status("ds@1.0.0", data)
        assert st.clean, st.to_dict()
        assert vault.dataset("ds@1.0.0").files()["path"].to_pylist() == ["raw/a.txt", "raw/b.txt"]
    finally:
        vault.close()


# -- the merge of the walk, the stat-cache record and the version's table ----------------------------


def _expected(files: dict[str, bytes], version: dict[str, bytes]) -> tuple[list[str], list[str], list[str]]:
    return (sorted(set(files) - set(version)), sorted(set(version) - set(files)),
            sorted(p for p in files if p in version and files[p] != version[p]))


def test_status_against_another_version_than_the_records(store_vault, tmp_path):
    v1 = {"a.txt": b"a", "b.txt": b"b", "d/c.txt": b"c", "d/e.txt": b"e"}
    src = write_files(tmp_path / "src", v1)
    store_vault.snapshot("ds", src, version="1.0.0")
    (src / "a.txt").write_bytes(b"A")
    (src / "d/c.txt").unlink()
    write_files(src, {"d-new.txt": "n"})
    store_vault.snapshot("ds", src, version="1.1.0")  # the folder's record is now 1.1.0's table
    now = {**v1, "a.txt": b"A", "d-new.txt": b"n"}
    del now["d/c.txt"]
    st = store_vault.status("ds@1.0.0", src)
    assert (st.added, st.removed, st.modified) == _expected(now, v1) == (["d-new.txt"], ["d/c.txt"], ["a.txt"])
    assert st.unchanged == 2
    assert store_vault.status("ds@1.1.0", src).clean


def test_a_touched_file_leaves_the_folder_clean_and_its_record_that_versions_table(store_vault, tmp_path, monkeypatch):
    import lensvault.datasets.ingest_worker as ingest_worker

    src = write_files(tmp_path / "src", {f"f{i}.txt": f"{i}" for i in range(20)})
    settle()  # (else every file is cached as unsure, and read again)
    v = store_vault.snapshot("ds", src, version="1.0.0")
    os.utime(src / "f3.txt", ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    settle()  # (its ctime is now: else cached as unsure)
    hashed: list[str] = []
    real = ingest_worker.hash_one
    monkeypatch.setattr(ingest_worker, "hash_one", lambda p, *rest: (hashed.append(p), real(p, *rest))[1])
    assert store_vault.status("ds@1.0.0", src).clean
    assert hashed == [str(src / "f3.txt")]  # read again: its stat moved
    with store_vault.state.open_index(os.path.realpath(src)) as record:
        assert record.digest == v.manifest().tables["files"]["digest"]  # same bytes: still that table
    assert store_vault.status("ds@1.0.0", src).clean and hashed == [str(src / "f3.txt")]


@pytest.mark.parametrize("damage", [False, True])
def test_status_in_two_processes_over_many_record_chunks(sqlite_vault, tmp_path, monkeypatch, damage):
    """Two shares of the top-level entries, each merged with its range of a record of ~750 chunks:
    changes at the shares' edges, a whole folder gone and one new, top-level files; with a
    damaged chunk, its files are read again and the answer is the same."""
    from lensvault import folder_record

    monkeypatch.setattr(folder_record, "CHUNK", 7)
    files = {f"d{i % 10}/f{i:05}.bin": b"%05d" % i for i in range(5200)}
    files.update({"a-top.txt": b"t", "d4.txt": b"beside d4/", "z-top.txt": b"z"})
    src = write_files(tmp_path / "src", files)
    version = dict(files)
    sqlite_vault.snapshot("ds", src, version="1.0.0")
    if damage:
        path = sqlite_vault.state._path("index", os.path.realpath(src))
        with folder_record.open_record(path, _tag()) as rec:
            offset = rec.chunks[len(rec.chunks) // 2][1]
        data = bytearray(Path(path).read_bytes())
        data[offset + 3] ^= 0xFF
        Path(path).write_bytes(bytes(data))
    import shutil

    shutil.rmtree(src / "d5")  # a folder gone: in the second share's range
    for rel in [p for p in files if p.startswith("d5/")]:
        del files[rel]
    for rel in ("d0/f00000.bin", "d4/f05194.bin", "d9/f05199.bin", "z-top.txt"):  # the edges
        (src / rel).write_bytes(b"changed")
        files[rel] = b"changed"
    write_files(src, {"d55/new.bin": "new", "0-first.txt": "first"})
    files.update({"d55/new.bin": b"new", "0-first.txt": b"first"})
    (src / "d4.txt").unlink()
    del files["d4.txt"]
    st = sqlite_vault.status("ds@1.0.0", src)
    assert (st.added, st.removed, st.modified) == _expected(files, version)
    assert st.unchanged == len(files) - len(st.added) - len(st.modified)
    again = sqlite_vault.status("ds@1.0.0", src)  # from the record the first one saved
    assert (again.added, again.removed, again.modified, again.unchanged) == (st.added, st.removed, st.modified,
                                                                             st.unchanged)


def _tag() -> bytes:
    from lensvault import state

    return state._TAG
