"""Snapshots: content-defined ids, metadata, pre-releases, the stat cache, manifests."""

from __future__ import annotations

import json
import os
import stat

import pytest
from _lvtest import lv, manifest_files, oids_in_store, settle, version_refs, write_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lensvault.datasets.ingest_worker as ingest_worker
from lensvault.errors import InvalidRef, LensVaultError, NotFound


class Counter:
    """Counts calls to the per-file hasher (measuring, not replacing it)."""

    def __init__(self, monkeypatch):
        self.paths: list[str] = []
        real = ingest_worker.hash_one

        def counting(path, *rest):  # rest: the copy-mode hasher, when one is used
            self.paths.append(path)
            return real(path, *rest)

        monkeypatch.setattr(ingest_worker, "hash_one", counting)


# -- same content, same id ---------------------------------------------------------------

file_trees = st.dictionaries(
    keys=st.lists(st.text("abcxyz019_-.", min_size=1, max_size=8).filter(lambda s: s not in (".", "..")),
                  min_size=1, max_size=3).map("/".join),
    values=st.binary(max_size=64),
    min_size=1, max_size=8,
).filter(lambda d: not any(a != b and b.startswith(a + "/") for a in d for b in d))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=file_trees, order_seed=st.randoms(use_true_random=False),
       mtimes=st.lists(st.integers(0, 2_000_000_000), min_size=8, max_size=8))
def test_same_content_gives_the_same_snapshot_id_whatever_the_order_and_mtimes(
        store_vault, tmp_path_factory, files, order_seed, mtimes):
    vault = store_vault
    n = len(vault.datasets() and vault.versions("prop"))
    a = write_files(tmp_path_factory.mktemp("a"), files)
    items = list(files.items())
    order_seed.shuffle(items)
    b = tmp_path_factory.mktemp("b")
    for i, (rel, data) in enumerate(items):
        write_files(b, {rel: data})
        os.utime(b / rel, ns=(mtimes[i] * 10**9, mtimes[i] * 10**9))
    va = vault.snapshot("prop", a, version=f"{n + 1}.0.0")
    vb = vault.snapshot("prop", b, version=f"{n + 2}.0.0", force=True)  # same content as its parent
    assert va.snapshot_id == vb.snapshot_id
    assert va.record.files == vb.record.files == len(files)
    # ...and one changed byte gives another id.
    rel, data = items[0]
    (b / rel).write_bytes(data + b"!")
    vc = vault.snapshot("prop", b, version=f"{n + 3}.0.0")
    assert vc.snapshot_id != va.snapshot_id


def test_snapshot_id_ignores_notes_names_and_time(store_vault, tmp_path):
    src = write_files(tmp_path / "src", {"x/1.txt": "1", "2.txt": "2"})
    a = store_vault.snapshot("one", src, version="1.0.0", notes="first")
    b = store_vault.snapshot("two", src, version="3.1.4", notes="other words")
    assert a.snapshot_id == b.snapshot_id
    assert a.record.manifest_oid != b.record.manifest_oid
    # The snapshot id names real bytes in the store.
    assert store_vault.store.check(a.snapshot_id) == "ok"


# -- metadata --------------------------------------------------------------------------------


def test_snapshot_json_output(sqlite_vault, tmp_path):
    src = write_files(tmp_path / "src", {"a.txt": "abc", "d/b.bin": b"\x00" * 10})
    r = lv("--vault", sqlite_vault.root, "dataset", "snapshot", "ds", src, "--version", "1.0.0", "--notes", "n", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert {"name", "version", "snapshot_id", "files", "bytes"} <= out.keys()
    assert (out["name"], out["version"], out["files"], out["bytes"]) == ("ds", "1.0.0", 2, 13)
    assert out["snapshot_id"] == sqlite_vault.dataset("ds@1.0.0").snapshot_id
    assert len(out["snapshot_id"]) == 64


def test_width_and_height_are_recorded_for_real_jpegs(store_vault, bccd_jpegs):
    from PIL import Image

    ds = store_vault.snapshot("bccd", bccd_jpegs, version="1.0.0")
    rows = ds.files().to_pylist()
    assert len(rows) == 4
    for row in rows:
        with Image.open(bccd_jpegs / row["path"]) as im:
            assert (row["width"], row["height"]) == im.size
        assert row["media_type"] == "image/jpeg"
        assert row["size"] == (bccd_jpegs / row["path"]).stat().st_size
    assert ds.manifest().counts["images"] == 4
    assert ds.manifest().media_types == {"image/jpeg": 4}


def test_non_images_have_no_size_and_a_media_type(sqlite_vault, tmp_path):
    src = write_files(tmp_path / "src", {"a.json": "{}", "b.weird": b"\x01\x02", "c.png": b"not really a png"})
    rows = {r["path"]: r for r in sqlite_vault.snapshot("m", src, version="1.0.0").files().to_pylist()}
    assert rows["a.json"]["media_type"] == "application/json" and rows["a.json"]["width"] is None
    assert rows["b.weird"]["media_type"] == "application/octet-stream"
    # A broken image is still versioned, just without a size.
    assert rows["c.png"]["media_type"] == "image/png" and rows["c.png"]["width"] is None


def test_pre_release_versions_order_before_their_release(vault, tmp_path):
    src = write_files(tmp_path / "src", {"a.txt": "a"})
    vault.snapshot("ds", src, version="1.0.0-rc.2")
    vault.snapshot("ds", src, version="1.0.0-rc.10", force=True)
    vault.snapshot("ds", src, version="0.9.0")
    assert vault.dataset("ds").version == "1.0.0-rc.10"  # latest so far
    final = vault.snapshot("ds", src, version="1.0.0", force=True)
    assert final.parent == "ds@1.0.0-rc.10"
    assert [v.version for v in vault.versions("ds")] == ["0.9.0", "1.0.0-rc.2", "1.0.0-rc.10", "1.0.0"]
    assert vault.dataset("ds").version == "1.0.0"
    assert vault.dataset("ds@latest").version == "1.0.0"
    assert vault.dataset("ds@1.0.0-rc.2").parent is None  # nothing lower existed when it was made
    assert (vault.manifests_dir / "ds" / "1.0.0-rc.2.json").is_file()


def test_parent_defaults_to_the_highest_lower_version_and_notes_are_kept(store_vault, tmp_path):
    src = write_files(tmp_path / "src", {"a.txt": "a"})
    store_vault.snapshot("ds", src, version="2.0.0")
    v = store_vault.snapshot("ds", src, version="1.5.0", notes="backport")
    assert v.parent is None  # nothing lower than 1.5.0
    v3 = store_vault.snapshot("ds", src, version="1.6.0", parent="2.0.0", force=True)
    assert v3.parent == "ds@2.0.0"
    assert store_vault.dataset("ds@1.5.0").record.notes == "backport"


def test_an_empty_folder_is_a_valid_snapshot(store_vault, tmp_path):
    (tmp_path / "empty").mkdir()
    ds = store_vault.snapshot("empty", tmp_path / "empty", version="1.0.0")
    assert (ds.record.files, ds.record.bytes) == (0, 0)
    res = ds.checkout(tmp_path / "out")
    assert res.files == 0 and sorted(os.listdir(tmp_path / "out")) == [".lensvault-checkout.json"]
    assert store_vault.status(None, tmp_path / "out").clean


def test_manifest_file_is_read_only_and_equal_to_the_stored_object(store_vault, tmp_path):
    src = write_files(tmp_path / "src", {"a.txt": "a"})
    ds = store_vault.snapshot("ds", src, version="1.0.0", notes="héllo")
    path = store_vault.manifests_dir / "ds" / "1.0.0.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert path.read_bytes() == store_vault.store.read_bytes(ds.record.manifest_oid)
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["snapshot_id"] == ds.snapshot_id and doc["notes"] == "héllo"
    assert doc["tables"]["files"]["oid"] in oids_in_store(store_vault)
    assert [p.name for p in path.parent.iterdir()] == ["1.0.0.json"]  # no temp files


def test_vault_bookkeeping_and_vcs_folders_are_not_snapshotted(sqlite_vault, tmp_path):
    vault = sqlite_vault
    write_files(vault.root, {"data/raw/a.jpg": b"\xff\xd8\xff", ".git/HEAD": "ref", "sub/.dvc/x": "y"})
    vault.snapshot("first", vault.root / "data", version="1.0.0")
    ds = vault.snapshot("root", vault.root, version="1.0.0")
    paths = ds.files()["path"].to_pylist()
    assert paths == ["data/raw/a.jpg"]


# -- the stat cache --------------------------------------------------------------------------


def test_resnapshot_with_nothing_changed_does_not_rehash(store_vault, tmp_path, monkeypatch):
    src = write_files(tmp_path / "src", {f"f{i:03}.txt": f"content {i}" for i in range(80)})
    settle()
    count = Counter(monkeypatch)
    a = store_vault.snapshot("ds", src, version="1.0.0")
    assert len(count.paths) == 80
    b = store_vault.snapshot("ds", src, version="1.0.1", force=True)
    assert len(count.paths) == 80  # nothing re-hashed
    assert a.snapshot_id == b.snapshot_id
    (src / "f007.txt").write_text("changed!")
    settle()
    c = store_vault.snapshot("ds", src, version="1.0.2")
    assert count.paths[80:] == [str(src / "f007.txt")]
    assert c.snapshot_id != a.snapshot_id
    # The folder's cache record holds the file's stat key and its right hash.
    from lensvault.state import stat_key

    entry = store_vault.state.index(os.path.realpath(src))["f007.txt"]
    assert entry[:4] == stat_key((src / "f007.txt").stat())
    assert entry[4] == dict(zip(*[c.files()[k].to_pylist() for k in ("path", "sha256")]))["f007.txt"]


def test_hardlink_snapshot_then_resnapshot_does_not_rehash(sqlite_vault, tmp_path, monkeypatch):
    """Hardlinking changes ctime; the cache keys are refreshed so the next run is a stat walk."""
    src = write_files(tmp_path / "src", {f"f{i}.bin": os.urandom(100) for i in range(20)})
    settle()
    count = Counter(monkeypatch)
    sqlite_vault.snapshot("ds", src, version="1.0.0", link="hardlink")
    assert len(count.paths) == 20
    sqlite_vault.snapshot("ds", src, version="1.0.1", link="hardlink", force=True)
    assert len(count.paths) == 20
    assert sqlite_vault.verify().ok


def test_touching_a_file_without_changing_it_rehashes_it_but_keeps_the_id(store_vault, tmp_path, monkeypatch):
    src = write_files(tmp_path / "src", {"a.txt": "a", "b.txt": "b"})
    settle()
    count = Counter(monkeypatch)
    a = store_vault.snapshot("ds", src, version="1.0.0")
    os.utime(src / "a.txt", ns=(1, 1))
    b = store_vault.snapshot("ds", src, version="1.0.1", force=True)
    assert count.paths[2:] == [str(src / "a.txt")]
    assert a.snapshot_id == b.snapshot_id


# -- inputs the snapshot must refuse cleanly ---------------------------------------------------


def test_identical_content_to_the_parent_needs_force(store_vault, tmp_path):
    from _lvtest import assert_nothing_half_written

    from lensvault.errors import UsageError

    src = write_files(tmp_path / "src", {"a.txt": "a"})
    first = store_vault.snapshot("ds", src, version="1.0.0")
    with pytest.raises(UsageError) as ei:
        store_vault.snapshot("ds", src, version="1.0.1")
    assert first.snapshot_id[:12] in ei.value.what and "--force" in ei.value.fix
    assert_nothing_half_written(store_vault, refs_before=["ds@1.0.0"], manifests_before=["ds/1.0.0.json"])
    again = store_vault.snapshot("ds", src, version="1.0.1", force=True)
    assert again.snapshot_id == first.snapshot_id


@pytest.mark.parametrize("name", ["Retail", "", "a b", "../x", "-x"])
def test_bad_dataset_names_are_refused_before_any_work(sqlite_vault, tmp_path, name):
    src = write_files(tmp_path / "src", {"a.txt": "a"})
    before = oids_in_store(sqlite_vault)  # the vault's own init record
    with pytest.raises(InvalidRef):
        sqlite_vault.snapshot(name, src, version="1.0.0")
    assert oids_in_store(sqlite_vault) == before


def test_bad_version_is_refused_before_any_work(store_vault, tmp_path):
    src = write_files(tmp_path / "src", {"a.txt": "a"})
    before = oids_in_store(store_vault)  # the vault's own init record
    with pytest.raises(InvalidRef):
        store_vault.snapshot("ds", src, version="1.0")
    assert oids_in_store(store_vault) == before


def test_a_parent_that_does_not_exist_is_refused(sqlite_vault, tmp_path):
    src = write_files(tmp_path / "src", {"a.txt": "a"})
    with pytest.raises(NotFound):
        sqlite_vault.snapshot("ds", src, version="1.0.0", parent="9.9.9")
    assert version_refs(sqlite_vault) == []


def test_build_metadata_does_not_make_a_new_version(sqlite_vault, tmp_path):
    from lensvault.errors import AlreadyExists

    src = write_files(tmp_path / "src", {"a.txt": "a"})
    sqlite_vault.snapshot("ds", src, version="1.0.0")
    (src / "a.txt").write_text("changed in place")
    with pytest.raises((AlreadyExists, InvalidRef)):
        sqlite_vault.snapshot("ds", src, version="1.0.0+fix")


@pytest.mark.parametrize("version", ["1.0.0-" + "a" * 120, "3000000000.0.0"])
def test_versions_that_do_not_fit_the_catalog_are_refused_cleanly(vault, tmp_path, request, version):
    src = write_files(tmp_path / "src", {"a.txt": "a"})
    try:
        vault.snapshot("ds", src, version=version)
    except LensVaultError as e:
        assert e.fix
        assert version_refs(vault) == []
    else:
        assert version_refs(vault) == [f"ds@{version}"]
    assert manifest_files(vault) == ([] if not version_refs(vault) else [f"ds/{version}.json"])
    assert vault.verify().ok


def test_a_symlink_snapshot_is_refused_before_any_work(sqlite_vault, tmp_path, monkeypatch):
    """`--link symlink` used to copy silently (and record "symlink" in the manifest): refused now,
    from the library and the CLI, plain and vision snapshots alike, before a file is read."""
    from lensvault.errors import UsageError

    src = write_files(tmp_path / "src", {"a.txt": "a", "img.jpg": b"\xff\xd8\xff"})
    count = Counter(monkeypatch)
    before = oids_in_store(sqlite_vault)
    for kwargs in ({}, {"format": "auto"}):
        with pytest.raises(UsageError) as ei:
            sqlite_vault.snapshot("ds", src, version="1.0.0", link="symlink", **kwargs)
        assert ei.value.where == "--link symlink" and "--link hardlink" in ei.value.fix
    assert count.paths == [] and oids_in_store(sqlite_vault) == before and version_refs(sqlite_vault) == []
    r = lv("--vault", sqlite_vault.root, "dataset", "snapshot", "ds", src, "--version", "1.0.0", "--link", "symlink")
    assert r.returncode == 2 and "symlink" in r.stderr and "--link hardlink" in r.stderr
    assert manifest_files(sqlite_vault) == []
    # Checkouts still symlink.
    sqlite_vault.snapshot("ds", src, version="1.0.0")
    sqlite_vault.checkout("ds@1.0.0", tmp_path / "out", link="symlink")
    assert (tmp_path / "out" / "a.txt").is_symlink()
