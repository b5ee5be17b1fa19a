"""Status: what in a folder differs from a dataset version (on each object store: ``store_vault``)."""

from __future__ import annotations

import os

import pytest
from _lvtest import write_files

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
    import lensvault.datasets.ingest as ingest

    src = write_files(tmp_path / "src", {f"f{i}.txt": f"{i}" for i in range(30)})
    store_vault.snapshot("ds", src, version="1.0.0")
    store_vault.checkout("ds@1.0.0", tmp_path / "out", link="copy")
    hashed = []
    real = ingest._hash_one
    monkeypatch.setattr(ingest, "_hash_one", lambda p, *rest: (hashed.append(p), real(p, *rest))[1])
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
