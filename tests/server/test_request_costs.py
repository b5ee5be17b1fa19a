"""What one request reads stays bounded by what it shows, not by the size of the vault: the last
N events are N rows, a list of models reads no bundle, a page of images reads no table once the
version's index is made (once per snapshot, shared by every handle), and the server makes that
index when it starts. Checked by counting rows and store reads, never by timing."""

from __future__ import annotations

import os
import subprocess
import time
from contextlib import contextmanager

import pytest

import lensvault
from lensvault.datasets import snapshot_cache
from tests.server.conftest import Server


@contextmanager
def statements(engine):
    """Every statement (and its parameters) the engine sends while inside."""
    import sqlalchemy as sa

    seen: list[tuple[str, object]] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)


def rows_read(engine, statement: str, parameters) -> int:
    """How many rows ``statement`` gives (run again, as sent)."""
    with engine.connect() as c:
        return len(c.exec_driver_sql(statement, parameters).fetchall())


@contextmanager
def store_reads(vault):
    """The object ids read through ``vault.store.read_bytes`` while inside (the real store answers)."""
    store = vault.store
    real = store.read_bytes
    seen: list[str] = []

    def counting(oid, *a, **kw):
        seen.append(oid)
        return real(oid, *a, **kw)

    store.read_bytes = counting
    try:
        yield seen
    finally:
        del store.read_bytes


def forget_derived(world) -> None:
    """Nothing derived from any snapshot, in this process or on disk (a server of an earlier test made some)."""
    import shutil

    snapshot_cache.clear()
    with lensvault.open(world) as vault:
        shutil.rmtree(vault.dir / "cache" / "snapshots", ignore_errors=True)


def test_the_last_n_events_are_read_as_n_rows(vault):
    for i in range(25):
        vault.create_token(f"t{i:02d}", role="read")
    every = vault.events()
    assert len(every) >= 25
    with statements(vault.catalog.engine) as seen:
        last = vault.events(limit=5)
    assert [e["id"] for e in last] == [e["id"] for e in every[-5:]]  # still oldest first
    reads = [(s, p) for s, p in seen if "FROM events" in s]
    assert reads and all(rows_read(vault.catalog.engine, s, p) <= 5 for s, p in reads)
    # Filters still apply before the cut.
    tokens_only = vault.events(action="token.*", limit=3)
    assert [e["id"] for e in tokens_only] == [e["id"] for e in every if e["action"].startswith("token.")][-3:]
    assert vault.events(limit=1000) == every


def test_listing_models_reads_no_bundle(world, runs):
    with lensvault.open(world) as vault:
        with store_reads(vault) as seen:
            listed = vault.models()
            summaries = listed.to_dict()
        assert [m["ref"] for m in summaries] == ["det@1.0.0", "det@1.1.0"]
        assert "production" in summaries[1]["aliases"]
        assert not {m.bundle_oid for m in listed} & set(seen)
        # The bundle is still there, read (and hash-checked) when it is used.
        with store_reads(vault) as seen:
            shown = vault.model("det@1.1.0").to_dict()
        assert shown["bundle_oid"] in seen and shown["label_map"]


def _reference_page(images, anns, *, split=None, class_id=None, after=0, limit=48):
    """What a page holds, from the whole tables (the rule the index must follow)."""
    having = {a["image"] for a in anns if a["class_id"] == class_id}
    chosen = [r for r in images
              if (split is None or r["split"] == split) and (class_id is None or r["path"] in having)]
    chosen.sort(key=lambda r: r["image_id"])
    total = len(chosen)
    rest = [r for r in chosen if r["image_id"] > after]
    page = rest[:limit]
    boxes = {r["path"]: sorted(((a["index"], a["class_id"], [a["x"], a["y"], a["w"], a["h"]]) for a in anns
                                if a["image"] == r["path"]), key=lambda t: t[0]) for r in page}
    return total, [(r["image_id"], r["path"], r["split"], boxes[r["path"]]) for r in page], len(rest) > limit


def _page_of(result):
    d = result.to_dict()
    return d["total"], [(i["image_id"], i["path"], i["split"],
                         [(a["index"], a["class_id"], a["bbox"]) for a in i["annotations"]]) for i in d["items"]], \
        d["next"] is not None


def test_pages_of_images_read_the_tables_once_per_snapshot_and_follow_the_rule(world, runs):
    ref = "shapes@1.0.0"
    forget_derived(world)
    with lensvault.open(world) as vault:
        ds = vault.dataset(ref)
        tables = {t["oid"] for t in ds.manifest().tables.values()}
        images, anns, cm = ds.images().to_pylist(), ds.annotations().to_pylist(), ds.class_map()
    split = images[0]["split"]
    cases = [{}, {"split": split}, {"class_name": cm.names[0]}, {"split": split, "class_name": cm.names[-1]},
             {"after": images[len(images) // 2]["image_id"], "limit": 3}, {"limit": 1}]
    with lensvault.open(world) as vault:
        with store_reads(vault) as first:
            vault.images(ref)
        assert set(first) & tables  # the first page reads the tables ...
    for case in cases:  # ... and no page after it does, through any new vault or handle
        with lensvault.open(world) as vault:
            with store_reads(vault) as seen:
                got = _page_of(vault.images(ref, **case))
                detail = vault.image(ref, images[-1]["image_id"]).to_dict()
            assert not set(seen) & tables, case
        cid = cm.ids[list(cm.names).index(case["class_name"])] if "class_name" in case else None
        want = _reference_page(images, anns, split=case.get("split"), class_id=cid, after=case.get("after", 0),
                               limit=case.get("limit", 48))
        assert got == want, case
        assert detail["path"] == images[-1]["path"]
        assert len(detail["annotations"]) == sum(a["image"] == images[-1]["path"] for a in anns)


def test_a_versions_counts_are_derived_once_per_snapshot(world, runs):
    ref = "shapes@1.0.0"
    forget_derived(world)
    with lensvault.open(world) as vault:
        counted = vault.dataset_details(ref).to_dict()
        tables = {t["oid"] for t in vault.dataset(ref).manifest().tables.values()}
        anns = vault.dataset(ref).annotations().to_pylist()
    assert counted["annotations"] == len(anns)
    assert sum(c["total"] for c in counted["per_class"].values()) == len(anns)
    with lensvault.open(world) as vault, store_reads(vault) as seen:
        again = vault.dataset_details(ref).to_dict()
        again["per_class"].clear()  # a caller's change does not reach what is kept
    assert not set(seen) & tables
    with lensvault.open(world) as vault:
        assert vault.dataset_details(ref).to_dict()["per_class"] == counted["per_class"]


def test_the_server_makes_the_latest_versions_index_when_it_starts(world, runs):
    from lensvault.server.state import ServerState

    forget_derived(world)
    state = ServerState(world, public_read=True)
    try:
        state.warmup.join(timeout=120)
        latest = max(state.vault.versions("shapes"), key=lambda v: v.semver).ref
        tables = {t["oid"] for t in state.vault.dataset(latest).manifest().tables.values()}
    finally:
        state.close()
    with lensvault.open(world) as vault, store_reads(vault) as seen:
        vault.images(latest)
        vault.dataset_details(latest)
    assert not set(seen) & tables


def _workers_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-ww", "-o", "pid=,args=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines() if "spawn_main" in line]


def test_serve_with_workers_answers_from_several_processes_and_stops_them_all(world, runs, client):
    s = Server(world, "--public-read", "--workers", "2")
    try:
        deadline = time.monotonic() + 60
        while len(_workers_of(s.proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        workers = _workers_of(s.proc.pid)
        assert len(workers) == 2
        for _ in range(6):
            r = client.get(f"{s.url}/api/v1/datasets/shapes/versions/1.0.0/images", params={"limit": 2})
            assert r.status_code == 200 and len(r.json()["items"]) == 2
        assert client.get(f"{s.url}/api/v1/models").json()[0]["ref"] == "det@1.0.0"
    finally:
        log = s.stop()
    assert s.proc.returncode == 0 and "Traceback" not in log
    assert not [w for w in workers if os.path.exists(f"/proc/{w}")]


@pytest.mark.parametrize("workers", ["0", "x"])
def test_a_bad_worker_count_is_refused(world, workers, tmp_path):
    from tests.cli.conftest import lv

    r = lv("serve", "--vault", world, "--port", 0, "--workers", workers, cwd=tmp_path, timeout=60)
    assert r.returncode == 2 and "--workers" in r.stderr and "Traceback" not in r.stderr


def test_a_new_process_reads_the_index_and_counts_from_this_machines_cache(world, runs):
    """What was derived from a snapshot is on disk after the first time: a process that has
    nothing in memory (the cache cleared) reads no table; a damaged cache file is derived again."""
    ref = "shapes@1.0.0"
    forget_derived(world)
    with lensvault.open(world) as vault:
        want_page = vault.images(ref, limit=5).to_dict()
        want_counts = vault.dataset_details(ref).to_dict()
        ds = vault.dataset(ref)
        tables = {t["oid"] for t in ds.manifest().tables.values()}
        cached = sorted((vault.dir / "cache" / "snapshots").glob(f"{ds.snapshot_id}.*"))
    assert [p.name.split(".")[-2:] for p in cached] == [["annotations", "arrow"], ["images", "arrow"],
                                                       ["vision_summary", "json"]]
    snapshot_cache.clear()
    with lensvault.open(world) as vault, store_reads(vault) as seen:
        assert vault.images(ref, limit=5).to_dict() == want_page
        assert vault.dataset_details(ref).to_dict() == want_counts
    assert not set(seen) & tables
    for path in cached:  # cut short, as a crash mid-write of a non-atomic writer would leave it
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    snapshot_cache.clear()
    with lensvault.open(world) as vault, store_reads(vault) as seen:
        assert vault.images(ref, limit=5).to_dict() == want_page
        assert vault.dataset_details(ref).to_dict() == want_counts
    assert set(seen) & tables  # derived again from the stored tables ...
    snapshot_cache.clear()
    with lensvault.open(world) as vault, store_reads(vault) as seen:
        assert vault.images(ref, limit=5).to_dict() == want_page
    assert not set(seen) & tables  # ... and written whole again


def test_gc_removes_what_a_killed_cache_writer_left_and_keeps_the_cache(world, runs):
    forget_derived(world)
    with lensvault.open(world) as vault:
        vault.images("shapes@1.0.0", limit=1)
        folder = vault.dir / "cache" / "snapshots"
        whole = sorted(p.name for p in folder.iterdir())
        left = folder / f".{whole[0]}.abc123.tmp"  # as derived_files._write names its temp file
        left.write_bytes(b"cut short")
        os.utime(left, (time.time() - 7200, time.time() - 7200))
        plan = vault.gc(grace_seconds=3600)
        assert [(x.kind, x.path) for x in plan.leftovers if "snapshots" in str(x.path)] == \
            [("cache temp file", str(left))]
        plan.execute()
        assert sorted(p.name for p in folder.iterdir()) == whole
