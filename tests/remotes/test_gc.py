"""`lensvault gc --remote NAME`: a plan first, deletion only with --yes; everything a ref or record
on the remote reaches is kept, and so is every object the server wrote within the grace period
(a push may be running); what nothing names and is older goes."""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from pathlib import Path

import pytest

import lensvault
from lensvault.store.remote import RemoteStore

from . import raw
from .conftest import folder_url, lv, lv_json, remote_args, single_objects
from .test_hints import hint, sh


@pytest.fixture(autouse=True)
def _single_objects(monkeypatch):
    single_objects(monkeypatch)  # these tests reach single objects behind LensVault's back

HOURS_2 = 7200


def _vault(tmp_path: Path, bccd_dir: Path, remote_url):
    v = lensvault.init(tmp_path / "a")
    v.snapshot("bccd", bccd_dir / "BCCD", version="1.0.0")
    lv_json("remote", "add", "origin", *remote_args(*remote_url), cwd=v.root)
    return v


def test_gc_plans_then_deletes_old_orphans_and_keeps_fresh_ones(tmp_path, bccd_dir):
    url = folder_url(tmp_path / 'remote')
    v = _vault(tmp_path, bccd_dir, (url, None))
    lv_json("push", "--all", cwd=v.root)
    raw.make_all_old(url, HOURS_2)  # what is kept below is kept because it is named, not because it is young
    old = raw.orphan(url, None, b"left by a push interrupted long ago")
    raw.make_old(url, old, HOURS_2)
    # A push running now: its objects are up, its records and refs not yet.
    src = tmp_path / "more"
    src.mkdir()
    (src / "new.bin").write_bytes(b"a new image" * 100)
    v.snapshot("more", src, version="1.0.0")
    running = sorted(v.dataset("more@1.0.0").object_ids())
    rs = RemoteStore(url)
    for oid in running:
        rs.put_object(oid, v.store.read_bytes(oid))
    before = raw.oids(url, None)

    plan = lv_json("gc", "--remote", "origin", cwd=v.root)
    assert plan["executed"] is None and [o["oid"] for o in plan["plan"]["objects"]] == [old]
    assert plan["plan"]["bytes"] == len(b"left by a push interrupted long ago")
    assert plan["plan"]["young"] == len(running) and plan["plan"]["kept"] == len(before) - 1 - len(running)
    human = lv("gc", "--remote", "origin", cwd=v.root)
    assert f"objects/{old[:2]}/{old[2:]}" in human.stdout and "Nothing deleted" in human.stdout
    assert raw.oids(url, None) == before  # a plan deletes nothing

    done = sh(hint(human.stdout, "lensvault gc --remote origin --yes"), v.root)
    assert done.returncode == 0, done.stderr
    assert raw.oids(url, None) == before - {old}
    # The running push finishes; what it had sent is there (nothing to send again), and all is whole.
    pushed = lv_json("push", "more@1.0.0", cwd=v.root)
    assert pushed["refs_created"] == ["refs/datasets/more/1.0.0"] and pushed["objects_sent"] == 0
    assert lv("verify", "--remote", "--hash", cwd=v.root).returncode == 0
    v.close()


def test_gc_keeps_fresh_orphans_and_a_short_grace_needs_force(tmp_path, remote_url, bccd_dir):
    url, endpoint = remote_url
    v = _vault(tmp_path, bccd_dir, remote_url)
    lv_json("push", "--all", cwd=v.root)
    named = raw.oids(url, endpoint)
    fresh = raw.orphan(url, endpoint, b"a push is sending this right now")

    plan = lv_json("gc", "--remote", "origin", "--yes", cwd=v.root)  # default grace: an hour
    assert plan["plan"]["objects"] == [] and plan["plan"]["young"] == 1 and plan["executed"] is None
    assert fresh in raw.oids(url, endpoint)

    r = lv("gc", "--remote", "origin", "--grace", "0", "--yes", cwd=v.root)
    assert r.returncode == 2 and "--force" in r.stderr and fresh in raw.oids(url, endpoint)

    done = lv_json("gc", "--remote", "origin", "--grace", "0", "--force", "--yes", cwd=v.root)
    assert done["executed"]["deleted"] == 1 and done["executed"]["needed_after"] == []
    assert raw.oids(url, endpoint) == named
    assert lv_json("verify", "--remote", "--hash", cwd=v.root)["ok"]
    v.close()


def test_gc_refuses_when_what_a_record_needs_is_unknown(tmp_path, remote_url, bccd_dir):
    url, endpoint = remote_url
    v = _vault(tmp_path, bccd_dir, remote_url)
    lv_json("push", "--all", cwd=v.root)
    manifest = v.dataset("bccd@1.0.0").record.manifest_oid
    raw.delete(url, endpoint, manifest)
    stray = raw.orphan(url, endpoint, b"stray")
    before = raw.oids(url, endpoint)
    r = lv("gc", "--remote", "origin", "--grace", "0", "--force", "--yes", cwd=v.root)
    assert r.returncode == 5 and manifest[:12] in r.stderr and "nothing was deleted" in r.stderr, r.stderr
    assert raw.oids(url, endpoint) == before and stray in before
    checked = sh(hint(r.stderr, "lensvault verify --remote"), v.root)
    assert checked.returncode == 1 and f"objects/{manifest[:2]}/{manifest[2:]}" in checked.stdout
    v.close()


def _history(rng: random.Random, root: Path, url: str, endpoint: str | None) -> lensvault.Vault:
    """A random history: snapshots, pushes of some versions, pushes cut short after their objects,
    stray objects, a second vault pushing to the same remote."""
    v = lensvault.init(root / "a")
    v.add_remote("origin", url, endpoint_url=endpoint)
    other = lensvault.init(root / "b")
    other.add_remote("origin", url, endpoint_url=endpoint)
    src = root / "src"
    src.mkdir()
    for i in range(rng.randint(3, 8)):
        (src / f"f{i}.bin").write_bytes(rng.randbytes(rng.randint(10, 3000)))
    rs = RemoteStore(url, endpoint_url=endpoint)
    versions: list[str] = []
    for step in range(rng.randint(5, 9)):
        op = rng.choice(["snapshot", "snapshot", "push", "push --all", "cut", "stray", "other"])
        if op == "snapshot" or not versions:
            files = sorted(src.iterdir())
            change = rng.choice(["add", "edit", "remove"]) if len(files) > 1 else "add"
            if change == "add":
                (src / f"n{step}.bin").write_bytes(rng.randbytes(rng.randint(10, 3000)))
            elif change == "edit":
                rng.choice(files).write_bytes(rng.randbytes(rng.randint(10, 3000)))
            else:
                rng.choice(files).unlink()
            ver = f"1.{len(versions)}.0"
            v.snapshot("data", src, version=ver)
            versions.append(f"data@{ver}")
        elif op == "push":
            v.push([rng.choice(versions)])
        elif op == "push --all":
            v.push(all=True)
        elif op == "cut":  # a push killed after some of its objects went up
            oids = sorted(v.dataset(rng.choice(versions)).object_ids())
            for oid in rng.sample(oids, rng.randint(1, len(oids))):
                rs.put_object(oid, v.store.read_bytes(oid))
        elif op == "stray":
            rs.put_bytes(rng.randbytes(50))
        else:
            d = root / f"other{step}"
            d.mkdir()
            (d / "x.bin").write_bytes(rng.randbytes(500))
            other.snapshot(f"other{step}", d, version="1.0.0")
            other.push([f"other{step}@1.0.0"])
    rs.put_bytes(rng.randbytes(60))  # at least one thing to collect
    other.close()
    return v


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_gc_never_deletes_a_referenced_object(tmp_path, remote_url, seed):
    url, endpoint = remote_url
    v = _history(random.Random(seed), tmp_path, url, endpoint)
    other = lensvault.open(tmp_path / "b")
    if endpoint is None:
        raw.make_all_old(url, HOURS_2)
        args = ["--yes"]
    else:
        args = ["--grace", "0", "--force", "--yes"]  # the server's times cannot be set back: a grace of 0
    done = lv_json("gc", "--remote", "origin", *args, cwd=v.root)
    left = raw.oids(url, endpoint)
    # What the remote's refs and journal name, worked out from the vaults that pushed them.
    needed = set(raw.journal_oids(url, endpoint))
    for ref in raw.dataset_refs(url, endpoint):
        owner = other if ref.startswith("other") else v
        needed |= owner.dataset(ref).object_ids()
    assert needed <= left, f"gc deleted objects a ref needs: {sorted(needed - left)[:5]}"
    assert left == needed  # and everything old that nothing names went
    assert done["executed"]["deleted"] > 0 and done["executed"]["needed_after"] == []  # there was garbage
    assert lv_json("verify", "--remote", "--hash", cwd=v.root)["ok"]
    other.close()
    v.close()


def test_gc_keeps_what_runs_models_configs_evaluations_and_aliases_reach(tmp_path, remote_url):
    from lensvault.integrity import reachable_oids

    from .test_share import _story

    url, endpoint = remote_url
    story = _story(tmp_path / "a")
    a = story.root
    lv_json("remote", "add", "origin", *remote_args(url, endpoint), cwd=a)
    lv_json("push", "--all", cwd=a)
    stray = raw.orphan(url, endpoint, b"from a push cut short")
    if endpoint is None:
        raw.make_all_old(url, HOURS_2)
        args = ["--yes"]
    else:
        args = ["--grace", "0", "--force", "--yes"]
    done = lv_json("gc", "--remote", "origin", *args, cwd=a)
    assert [o["oid"] for o in done["plan"]["objects"]] == [stray] and done["executed"]["deleted"] == 1
    # Everything the first vault's own gc would keep (from its catalog: weights, bundles, logs,
    # predictions, environments, configs, versions) is still on the remote.
    with lensvault.open(a) as v:
        keep = set(reachable_oids(v))
    left = raw.oids(url, endpoint)
    assert keep <= left, sorted(keep - left)[:5]
    cloned = lv_json("clone", *remote_args(url, endpoint), str(tmp_path / "b"), cwd=tmp_path)
    assert cloned["restored"]["model_versions"] == 3 and cloned["restored"]["evaluations"] >= 3
    assert lv("verify", cwd=tmp_path / "b").returncode == 0
    story.vault.close()


class _At:
    """A progress reporter that runs ``on_start`` when the task named ``label`` starts and
    ``on_advance`` at its first step (the library's own reporting hook: it lets a test place one
    command between two steps of another, with no change to either)."""

    def __init__(self, label: str, on_start=None, on_advance=None) -> None:
        self.label, self.on_start, self.on_advance = label, on_start, on_advance

    def task(self, description: str, total):
        from contextlib import contextmanager

        mine = description == self.label

        def advance(n: int = 1) -> None:
            if mine and self.on_advance is not None:
                action, self.on_advance = self.on_advance, None
                action()

        @contextmanager
        def cm():
            if mine and self.on_start is not None:
                self.on_start()
            yield advance

        return cm()


def test_gc_names_a_record_written_meanwhile_that_needs_what_it_deleted(tmp_path):
    """The case the grace period cannot cover: a push finds an old orphan in its listing, relies on
    it, and writes its refs after gc deleted it. gc says so, with the fix; the fix works."""
    import threading

    url = folder_url(tmp_path / 'remote')
    src = tmp_path / "frames"
    src.mkdir()
    for i in range(80):  # over 64 objects of unknown state: the push lists the remote
        (src / f"{i:03d}.bin").write_bytes(f"frame {i}".encode() * 50)
    v = lensvault.init(tmp_path / "a")
    v.add_remote("origin", url)
    v.snapshot("frames", src, version="1.0.0")
    needed = v.dataset("frames@1.0.0").object_ids()
    rs = RemoteStore(url)
    rs.create()
    for oid in needed:  # a push cut short long ago
        rs.put_object(oid, v.store.read_bytes(oid))
    raw.make_all_old(url, HOURS_2)

    at_refs, gc_deleted, pushed = threading.Event(), threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def push() -> None:
        try:
            with lensvault.open(v.root) as mine:
                res = mine.push(["frames@1.0.0"], progress=_At("Writing refs", on_start=lambda: (
                    at_refs.set(), gc_deleted.wait(60))))
            assert res.listed and res.objects_sent == 0  # it relied on the orphans
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            pushed.set()

    t = threading.Thread(target=push)
    t.start()
    assert at_refs.wait(60)  # the push listed the remote, found every object there, sent its records
    result = v.collect_remote_garbage("origin", delete=True, progress=_At(
        "Deleting objects", on_advance=lambda: (gc_deleted.set(), pushed.wait(60))))
    t.join(60)
    assert not errors, errors
    lost = {x["oid"] for x in result.executed["needed_after"]}
    manifest = v.dataset("frames@1.0.0").record.manifest_oid
    # Named: what the new record names itself (its manifest, which stood for the files it listed).
    assert manifest in lost and lost <= needed and result.executed["deleted"] == len(needed) and not result.ok
    assert all(x["needed_by"] == ["frames@1.0.0"] for x in result.executed["needed_after"])
    # The fix gc prints, as printed, from the vault that has the objects.
    import io

    from rich.console import Console

    from lensvault.render import remote_checks

    buf = io.StringIO()
    remote_checks.gc(result, Console(file=buf, color_system=None, width=300))
    assert sh(hint(buf.getvalue(), "lensvault push --all --check-remote"), v.root).returncode == 0
    assert lv_json("verify", "--remote", "--hash", cwd=v.root)["ok"]
    v.close()


def test_gc_and_verify_on_packs_rewrite_a_pack_without_its_orphans_and_find_a_damaged_range(tmp_path, bccd_dir,
                                                                                          monkeypatch):
    """The packed layout (small objects in packs): gc collects an orphan by rewriting the pack
    that holds it (new pack and index first), keeps everything named, and verify --hash finds a
    flipped byte inside a pack."""

    monkeypatch.delenv("LENSVAULT_PACK_BELOW")
    url = folder_url(tmp_path / 'remote')
    folder = tmp_path / "remote"
    v = _vault(tmp_path, bccd_dir, (url, None))
    lv_json("push", "--all", cwd=v.root)
    needed = set(v.dataset("bccd@1.0.0").object_ids())
    rs = RemoteStore(url)
    assert needed <= set(rs.packed()), "small objects travel in packs"
    # A push cut short after its pack: a pack holding one named object and one orphan.
    orphan = b"an object an interrupted push left in its pack"
    orphan_oid = hashlib.sha256(orphan).hexdigest()
    named = min(needed)
    rs.put_pack([(named, v.store.read_bytes(named)), (orphan_oid, orphan)])
    for p in (folder / "packs").iterdir():
        os.utime(p, (time.time() - HOURS_2, time.time() - HOURS_2))
    plan = lv_json("gc", "--remote", "origin", cwd=v.root)
    assert [o["oid"] for o in plan["plan"]["objects"]] == [orphan_oid]
    done = lv_json("gc", "--remote", "origin", "--yes", cwd=v.root)
    assert done["executed"]["deleted"] == 1 and done["executed"]["packs_rewritten"] >= 1
    left = {o.oid for o in RemoteStore(url).list_objects()}
    assert needed <= left and orphan_oid not in left
    assert lv_json("verify", "--remote", "origin", "--hash", cwd=v.root)["ok"]

    # A flipped byte inside a pack is found by --hash and named.
    rs = RemoteStore(url)
    victim = max(needed)
    index = rs.packed()[victim]
    off, _n = index.entries[victim]
    pack = folder / index.pack_key
    data = bytearray(pack.read_bytes())
    data[off] ^= 0xFF
    pack.write_bytes(bytes(data))
    r = lv("verify", "--remote", "origin", "--hash", "--json", cwd=v.root)
    assert r.returncode == 1, r.stdout + r.stderr
    corrupt = json.loads(r.stdout)["corrupt"]
    assert victim in json.dumps(corrupt), r.stdout
    # Its fix works as printed: the packed copy cannot be deleted alone, a push replaces it.
    assert all("delete" not in c["fix"] and "push --all --check-remote" in c["fix"] for c in corrupt), corrupt
    assert lv("push", "--all", "--check-remote", cwd=v.root).returncode == 0
    assert lv_json("verify", "--remote", "origin", "--hash", cwd=v.root)["ok"]
