"""A write checks what it commits: no version, model or run names an object the store lacks.

The stat cache may say a file's content is stored; the store decides (existence and size,
checked before the commit), and whatever it lacks is stored again from the source. The
commit itself re-checks, under the lock gc respects, the objects no committed version
already references (integrity: gc cannot race a writer).
"""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from _lvtest import lv, oids_in_store, settle, version_refs, write_files

from lensvault.errors import ObjectsVanished
from lensvault.store import inode_index


def _oid(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _lose(vault, oid: str) -> None:
    os.unlink(vault.store.oid_to_path(oid))


def _truncate(vault, oid: str) -> None:
    p = vault.store.oid_to_path(oid)
    os.chmod(p, 0o644)
    with open(p, "r+b") as f:
        f.truncate(1)


# (Truncating a hardlinked object truncates the source file too: that is damage through a
# hardlink, which test_corrupt_bytes.py covers.)
@pytest.mark.parametrize("link,damage", [("copy", _lose), ("copy", _truncate), ("auto", _lose), ("auto", _truncate),
                                         ("hardlink", _lose)])
def test_resnapshot_after_a_lost_object_stores_it_again(sqlite_vault, tmp_path, link, damage):
    """The fix the tool suggests for a lost object (re-snapshot the source) really fixes it."""
    files = {f"f{i}.txt": f"file number {i}" for i in range(6)}
    src = write_files(tmp_path / "src", files)
    settle()
    sqlite_vault.snapshot("ds", src, version="1.0.0", link=link)
    lost = _oid(b"file number 3")
    damage(sqlite_vault, lost)
    assert not sqlite_vault.verify().ok
    # Unchanged folder, unchanged stat cache: only the store can tell the object is gone.
    v2 = sqlite_vault.snapshot("ds", src, version="1.0.1", link=link, force=True)
    assert lost in v2.object_ids()
    assert sqlite_vault.store.check(lost) == "ok"
    assert sqlite_vault.verify().ok  # 1.0.0 is whole again too: same object


def test_a_big_hardlinked_folder_asks_the_listed_store_and_stores_what_it_lost(sqlite_vault, tmp_path, monkeypatch):
    """From 5,000 files a hardlink re-snapshot lists the store with inodes once (store/inode_index.py)
    instead of a stat per object: a lost object, one restored as a copy (another inode) and one
    truncated there are each found, and stored again from the folder."""
    files = {f"d{i % 7}/f{i:05}.txt": f"file number {i}" for i in range(5200)}
    src = write_files(tmp_path / "src", files)
    settle()
    vault = sqlite_vault
    vault.snapshot("ds", src, version="1.0.0", link="hardlink")
    lost, copied, cut = _oid(b"file number 3"), _oid(b"file number 2000"), _oid(b"file number 4000")
    _lose(vault, lost)
    p = vault.store.oid_to_path(copied)
    data = p.read_bytes()
    os.unlink(p)
    p.write_bytes(data)  # the same bytes, another inode: asked of the store, and intact
    p = vault.store.oid_to_path(cut)
    data = p.read_bytes()
    os.unlink(p)
    p.write_bytes(data[:3])  # another inode, and short: damaged
    assert not vault.verify().ok
    listed = tmp_path / "listed"  # (the walk runs in forked children: they say so in a file)
    real = inode_index._listed

    def listing(store, shards, cache):
        with open(listed, "a") as f:
            f.write(f"{shards[0]}-{shards[-1]}\n")
        return real(store, shards, cache)

    monkeypatch.setattr(inode_index, "_listed", listing)
    vault.snapshot("ds", src, version="1.0.1", link="hardlink", force=True)
    # Each of the walk's two processes listed half the store, and got the other half from the other.
    assert sorted(listed.read_text().split()) == ["0-127", "128-255"]
    assert vault.verify().ok and all(vault.store.check(o) == "ok" for o in (lost, copied, cut))


def test_a_lost_object_of_a_changed_folder_is_stored_again(sqlite_vault, tmp_path):
    """Also when the latest version's files-table digest cannot answer (the folder changed)."""
    src = write_files(tmp_path / "src", {"a.txt": "alpha", "b.txt": "beta"})
    settle()
    sqlite_vault.snapshot("ds", src, version="1.0.0")
    _lose(sqlite_vault, _oid(b"alpha"))
    (src / "c.txt").write_text("gamma")
    settle()
    sqlite_vault.snapshot("ds", src, version="1.1.0")
    assert sqlite_vault.verify().ok


def test_a_lost_object_with_a_touched_source_is_stored_again(sqlite_vault, tmp_path):
    """The file is read again (its stat moved) and its content is one a version knows: still checked."""
    src = write_files(tmp_path / "src", {"a.txt": "alpha", "b.txt": "beta"})
    settle()
    sqlite_vault.snapshot("ds", src, version="1.0.0", link="auto")
    _lose(sqlite_vault, _oid(b"alpha"))
    os.utime(src / "a.txt", ns=(10**9, 10**9))
    settle()
    sqlite_vault.snapshot("ds", src, version="1.0.1", link="auto", force=True)
    assert sqlite_vault.verify().ok


def test_a_vision_resnapshot_stores_a_lost_image_again(sqlite_vault, bccd_dir, tmp_path):
    import shutil

    src = tmp_path / "bccd"
    shutil.copytree(bccd_dir / "BCCD", src)
    settle()
    v1 = sqlite_vault.snapshot("bccd", src, version="1.0.0", format="voc")
    image = next(p for p in sorted(src.rglob("*.jpg")))
    lost = _oid(image.read_bytes())
    _lose(sqlite_vault, lost)
    sqlite_vault.snapshot("bccd", src, version="1.0.1", format="voc", force=True)
    assert sqlite_vault.verify().ok and lost in v1.object_ids()


def test_commit_refuses_a_version_whose_objects_are_gone(vault, tmp_path):
    """commit_version straight from an ingested table whose object vanished before the commit."""
    from lensvault.datasets.ingest import ingest_folder
    from lensvault.datasets.snapshot import commit_version

    src = write_files(tmp_path / "src", {"a.txt": "alpha", "b.txt": "beta"})
    table = ingest_folder(vault, src)
    vault.store.delete(_oid(b"beta"))  # what a gc racing the writer does
    with pytest.raises(ObjectsVanished) as ei:
        commit_version(vault, name="ds", version="1.0.0", files=table)
    assert ei.value.details["missing"] == [_oid(b"beta")] and "again" in ei.value.fix
    assert version_refs(vault) == [] and not (vault.manifests_dir / "ds" / "1.0.0.json").exists()
    # The command run again stores it again.
    vault.snapshot("ds", src, version="1.0.0")
    assert vault.verify().ok


def test_restore_replaces_a_damaged_object_only_with_bytes_that_hash_right(sqlite_vault, tmp_path):
    weights = write_files(tmp_path / "out", {"model.pt": b"w" * 4000}) / "model.pt"
    oid = _oid(weights.read_bytes())
    store = sqlite_vault.store
    store.put_files([(str(weights), oid)])
    p = store.oid_to_path(oid)
    os.chmod(p, 0o644)
    with open(p, "r+b") as f:
        f.write(b"X")  # same size: only hashing tells
    assert store.check(oid) == "corrupt"
    other = write_files(tmp_path / "o2", {"x": b"not it"}) / "x"
    assert not store.restore(oid, other) and store.check(oid) == "corrupt"  # never a wrong replacement
    assert store.restore(oid, weights) and store.check(oid) == "ok"
    assert not os.stat(p).st_mode & 0o222  # read-only again


def test_storing_a_file_again_replaces_a_lost_or_truncated_object(sqlite_vault, tmp_path):
    """put_files (run artifacts, logs, model weights; hardlinked in by local_links.put_files) skips only
    an object that is there intact."""
    from lensvault.store.local_links import put_files

    art = write_files(tmp_path / "out", {"metrics.json": json.dumps({"ap": 0.5})}) / "metrics.json"
    oid = _oid(art.read_bytes())
    store = sqlite_vault.store
    for link in ("copy", "hardlink"):
        put_files(store, [(str(art), oid)], link)
        _lose(sqlite_vault, oid)
        put_files(store, [(str(art), oid)], link)
        assert store.check(oid) == "ok"
        if link == "copy":  # (a hardlinked object is the file itself)
            _truncate(sqlite_vault, oid)
            put_files(store, [(str(art), oid)], link)
            assert store.check(oid) == "ok", link
        _lose(sqlite_vault, oid)


def test_the_cli_resnapshot_fix_is_reported_clean(sqlite_vault, tmp_path):
    src = write_files(tmp_path / "src", {"a.txt": "alpha"})
    settle()
    assert lv("--vault", sqlite_vault.root, "dataset", "snapshot", "ds", src, "--version", "1.0.0").returncode == 0
    _lose(sqlite_vault, _oid(b"alpha"))
    r = lv("--vault", sqlite_vault.root, "verify")
    assert r.returncode == 1 and "MISSING" in r.stdout
    r = lv("--vault", sqlite_vault.root, "dataset", "snapshot", "ds", src, "--version", "1.0.1", "--force")
    assert r.returncode == 0, r.stderr
    assert lv("--vault", sqlite_vault.root, "verify").returncode == 0
    assert _oid(b"alpha") in oids_in_store(sqlite_vault)


@pytest.mark.parametrize("damage", ["lost", "corrupt"])
def test_dataset_fix_never_builds_on_a_damaged_parent_and_works_once_repaired(sqlite_vault, bccd_dir, tmp_path, damage):
    import re
    import shutil

    from _lvtest import flip_byte

    from lensvault.errors import IntegrityError, ObjectMissing

    src = tmp_path / "bccd"
    shutil.copytree(bccd_dir / "BCCD", src)
    settle()
    sqlite_vault.snapshot("cells", src, format="voc", version="1.0.0")
    image = sorted(src.rglob("*.jpg"))[5]
    oid = _oid(image.read_bytes())
    if damage == "lost":
        _lose(sqlite_vault, oid)
    else:
        flip_byte(sqlite_vault.store.oid_to_path(oid), offset=500)
    xml = sorted((src / "Annotations").glob("*.xml"))[3]
    fixed = write_files(tmp_path / "fixed", {xml.name: re.sub(r"<name>\w+</name>", "<name>RBC</name>",
                                                              xml.read_text(), count=1)})
    with pytest.raises(ObjectMissing if damage == "lost" else IntegrityError) as ei:
        sqlite_vault.fix("cells@1.0.0", fixed)
    assert "verify --repair" in ei.value.fix
    assert version_refs(sqlite_vault) == ["cells@1.0.0"]
    assert sqlite_vault.verify(repair=True).ok  # from the folder the version was snapshotted from
    v2 = sqlite_vault.fix("cells@1.0.0", fixed)
    assert v2.ref == "cells@1.0.1" and oid in v2.object_ids() and sqlite_vault.verify().ok


@pytest.mark.parametrize("link", ["hardlink", "copy"])
def test_a_commit_looks_for_its_objects_only_if_one_left_the_store_since_the_ingest(sqlite_vault, tmp_path,
                                                                                    monkeypatch, link):
    """The store's deletion mark (LocalObjectStore.deletion_mark) moves after every object gc deletes
    or verify sets aside. Unmoved between the ingest and the commit: the objects the ingest stored
    or found are all there, and the commit does not stat each. Moved, by an object that is not
    even this write's: every one is looked for again, and a lost one refuses the version."""
    from lensvault.datasets.ingest import ingest_folder
    from lensvault.datasets.snapshot import commit_version

    vault = sqlite_vault
    looked: list[list[str]] = []
    real = type(vault.store).missing
    monkeypatch.setattr(type(vault.store), "missing", lambda self, oids: (looked.append(list(oids)), real(self, oids))[1])
    src = write_files(tmp_path / "src", {f"f{i}.txt": f"file {i}" for i in range(20)})
    commit_version(vault, name="ds", version="1.0.0", files=ingest_folder(vault, src, link=link))
    assert looked == []  # nothing left the store: no object looked for
    other = write_files(tmp_path / "other", {"x.txt": "unreferenced"})
    commit_version(vault, name="tmp", version="1.0.0", files=ingest_folder(vault, other, link=link))

    table = ingest_folder(vault, write_files(tmp_path / "src2", {"a.txt": "alpha", "b.txt": "beta"}), link=link)
    vault.store.quarantine(_oid(b"unreferenced"))  # another object leaves the store: the mark moves
    commit_version(vault, name="ds2", version="1.0.0", files=table)
    assert {_oid(b"alpha"), _oid(b"beta")} <= {o for batch in looked for o in batch}  # (and the version's own)

    looked.clear()
    table = ingest_folder(vault, write_files(tmp_path / "src3", {"c.txt": "gamma"}), link=link)
    vault.store.delete(_oid(b"gamma"))
    with pytest.raises(ObjectsVanished):
        commit_version(vault, name="ds3", version="1.0.0", files=table)
    assert looked and version_refs(vault) == ["ds2@1.0.0", "ds@1.0.0", "tmp@1.0.0"]


def test_the_deletion_mark_moves_with_every_object_gone_and_never_back(tmp_path):
    from lensvault.store import open_store

    store = open_store(tmp_path / "objects")
    store.create()
    oids = [store.put_bytes(f"object {i}".encode()) for i in range(3)]
    marks = [store.deletion_mark()]
    assert store.deletion_mark() == marks[0]  # (reading it moves nothing)
    store.delete(oids[0])
    marks.append(store.deletion_mark())
    store.delete(oids[0])  # not there: nothing left the store
    assert store.deletion_mark() == marks[-1]
    store.quarantine(oids[1])
    marks.append(store.deletion_mark())
    os.unlink(tmp_path / "objects" / "deletions")  # lost: a new file is a new mark
    marks.append(store.deletion_mark())
    store.delete(oids[2])
    marks.append(store.deletion_mark())
    assert None not in marks and len(set(marks)) == len(marks)
