"""What one request reads stays bounded by what it shows, not by the size of the vault: the last
N events are N rows, a list of models reads no bundle, a page of images reads no table once the
version's index is made (once per snapshot, shared by every handle), and the server makes that
index when it starts. Checked by counting rows and store reads, never by timing."""

from __future__ import annotations

import os
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

import lensvault
from lensvault.datasets import snapshot_cache
from tests.server.conftest import Server, while_every_worker_thread_is_taken


@contextmanager
def statements():
    """Every read query (and its parameters) the repositories run while inside, on either driver
    (catalog/sql.py runs them all: sqlite3 on a SQLite catalog, SQLAlchemy otherwise)."""
    from lensvault.catalog import sql

    seen: list[tuple[str, object]] = []
    execute = sql._execute

    def recording(conn, statement, parameters):
        seen.append((statement, parameters))
        return execute(conn, statement, parameters)

    sql._execute = recording
    try:
        yield seen
    finally:
        sql._execute = execute


def rows_read(vault, statement: str, parameters) -> int:
    """How many rows ``statement`` gives (run again, as sent)."""
    from lensvault.catalog import sql

    with vault.catalog.query() as c:
        return len(sql.tuples(c, statement, parameters))


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
    with statements() as seen:
        last = vault.events(limit=5)
    assert [e["id"] for e in last] == [e["id"] for e in every[-5:]]  # still oldest first
    reads = [(s, p) for s, p in seen if "FROM events" in s]
    assert reads and all(rows_read(vault, s, p) <= 5 for s, p in reads)
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


# -- what one request costs the server process (counted, never timed) -------------------------
def test_a_kept_answer_is_sent_as_its_kept_bytes(world, runs, monkeypatch):
    """A version's details and a page of its images cannot change: the second request sends the
    bytes the first made, without building the dict and the JSON again."""
    import json

    from starlette.testclient import TestClient

    from lensvault.server import create_app

    with lensvault.open(world) as vault:
        kinds = {type(vault.dataset_details("shapes@1.0.0")), type(vault.images("shapes@1.0.0"))}
    made: list[str] = []
    for cls in kinds:
        real = cls.to_dict
        monkeypatch.setattr(cls, "to_dict", lambda self, *a, _real=real, **kw: (made.append(type(self).__name__),
                                                                              _real(self, *a, **kw))[1])
    urls = ["/api/v1/datasets/shapes/versions/1.0.0", "/api/v1/datasets/shapes/versions/1.0.0/images?limit=5"]
    with TestClient(create_app(world, public_read=True)) as c:
        first = [c.get(u) for u in urls]
        assert [r.status_code for r in first] == [200, 200]
        assert len(made) == 2
        made.clear()
        again = [c.get(u) for u in urls]
        assert made == []  # nothing rebuilt
        assert [r.content for r in again] == [r.content for r in first]
        assert all(r.headers["content-type"] == "application/json" for r in again)
        # A moving ref (the latest version) is not kept: built again each time.
        assert c.get("/api/v1/datasets/shapes/versions/latest").status_code == 200
        assert c.get("/api/v1/datasets/shapes/versions/latest").status_code == 200
        assert len(made) == 2
    with lensvault.open(world) as vault:
        assert json.loads(first[0].content) == json.loads(json.dumps(vault.dataset_details("shapes@1.0.0").to_dict()))


def test_kept_answers_and_thumbnails_are_sent_without_a_worker_thread(world, runs, tokens):
    """A kept answer (a version's details, a page of its images) and a thumbnail made before are
    sent from the event loop: they come back while every worker thread is taken (before, each
    waited for a thread to copy bytes it already had). Tokens are still checked on every request
    (in a worker thread: a catalog read), and a revoked one is refused after it was kept."""
    from starlette.testclient import TestClient

    from lensvault.server import create_app

    with lensvault.open(world) as vault:
        sha = vault.images("shapes@1.0.0").to_dict()["items"][0]["sha256"]
    urls = ["/api/v1/datasets/shapes/versions/1.0.0", "/api/v1/datasets/shapes/versions/1.0.0/images?limit=5",
            f"/api/v1/objects/{sha}/thumbnail?size=128"]
    with TestClient(create_app(world, public_read=True)) as c:
        first = {u: c.get(u) for u in urls}  # computed in worker threads, then kept
        assert [r.status_code for r in first.values()] == [200, 200, 200]
        got: dict = {}
        assert while_every_worker_thread_is_taken(c, lambda: got.update({u: c.get(u) for u in urls}))
        assert {u: (r.status_code, r.content) for u, r in got.items()} == \
            {u: (200, r.content) for u, r in first.items()}
        etag = first[urls[2]].headers["etag"]
        assert while_every_worker_thread_is_taken(
            c, lambda: got.update(revalidated=c.get(urls[2], headers={"If-None-Match": etag})))
        assert got["revalidated"].status_code == 304
        # What is not kept but short (a moving ref) is read on the loop (SQLite catalog); what
        # grows with the data (every file of the version) still goes to a worker thread.
        assert while_every_worker_thread_is_taken(c, lambda: c.get("/api/v1/datasets/shapes/versions/latest"))
        assert not while_every_worker_thread_is_taken(
            c, lambda: c.get("/api/v1/datasets/shapes/versions/latest?files=true"), deadline=0.5)

    with TestClient(create_app(world)) as c:  # tokens needed
        bearer = {"Authorization": f"Bearer {tokens.reader}"}
        assert all(c.get(u, headers=bearer).status_code == 200 for u in urls)  # kept now
        for u in urls:
            assert c.get(u).status_code == 401
            assert c.get(u, headers={"Authorization": f"Bearer {tokens.revoked}"}).status_code == 401
            assert c.get(u, headers={"Authorization": "Bearer nope"}).status_code == 401
            assert c.get(u, headers=bearer).content == first[u].content


def test_answers_are_json_whatever_the_numbers():
    """The API's JSON: NaN and infinities (JSON has none) are null, not a 500; integers past 64
    bits are exact; keys that are not strings are strings, as json writes them."""
    import json

    from lensvault.server.api import _json

    class Result:
        def __init__(self, d):
            self.d = d

        def to_dict(self):
            return self.d

    body = _json(Result({"loss": float("nan"), "range": [float("inf"), -float("inf"), 1.5], 3: "é"})).body
    assert json.loads(body) == {"loss": None, "range": [None, None, 1.5], "3": "é"}
    assert json.loads(_json(Result({"big": 2**70, 1: [True, None]})).body) == {"big": 2**70, "1": [True, None]}


def _if_none_match_cases(c, url: str) -> None:
    r = c.get(url)
    assert r.status_code == 200 and r.content
    etag = r.headers["etag"]
    for sent in (etag, f'"other", {etag}', f"W/{etag}", "*"):
        again = c.get(url, headers={"If-None-Match": sent})
        assert again.status_code == 304 and again.content == b"", sent
        assert again.headers["etag"] == etag and again.headers["cache-control"] == r.headers["cache-control"]
    other = c.get(url, headers={"If-None-Match": '"not-it"'})
    assert other.status_code == 200 and other.content == r.content


def test_cached_pictures_answer_a_revalidation_with_304(sqlite_vault, tmp_path, monkeypatch):
    """Thumbnails and mask pictures: 304 without a body when the client names their ETag (they
    were sent whole every time), the whole picture otherwise; made again when gc removed them."""
    import json

    from starlette.testclient import TestClient

    from lensvault.image_cache import thumbnail_path
    from lensvault.server import create_app
    from tests.registry._helpers import make_coco

    vault = sqlite_vault
    images, ann = make_coco(tmp_path / "src", 2)
    coco = json.loads(ann.read_text())
    coco["annotations"][0]["segmentation"] = {"size": [32, 32], "counts": [64, 8, 24, 8, 920]}
    ann.write_text(json.dumps(coco))
    vault.snapshot("tiny", images, version="1.0.0", format="coco", annotations=ann)
    item = vault.images("tiny@1.0.0").to_dict()["items"][0]
    mask = next(a for a in vault.image("tiny@1.0.0", item["image_id"]).to_dict()["annotations"] if a.get("rle"))
    thumb = f"/api/v1/objects/{item['sha256']}/thumbnail?size=128"
    with TestClient(create_app(vault.root, public_read=True)) as c:
        _if_none_match_cases(c, thumb)
        _if_none_match_cases(c, f"/api/v1/datasets/tiny/versions/1.0.0/images/{item['image_id']}/masks/{mask['index']}")
        assert c.get(thumb).headers["x-content-type-options"] == "nosniff"
        made = thumbnail_path(vault.dir, item["sha256"], 128)
        body = made.read_bytes()
        made.unlink()  # as gc does
        # This process kept the picture's bytes (they cannot change); another one makes it again.
        assert c.get(thumb).content == body
    with TestClient(create_app(vault.root, public_read=True)) as c:
        r = c.get(thumb)
        assert r.status_code == 200 and r.content == body and made.exists()
        # A kept thumbnail is sent without asking the store for PICTURE_CHECKED_FOR seconds
        # after its object was last found there; then the store is asked again (gc may have
        # removed the object).
        Path(vault.store.files.path(item["sha256"])).unlink()
        assert c.get(thumb).content == body
        monkeypatch.setattr("lensvault.server.state.PICTURE_CHECKED_FOR", 0.0)
        gone = c.get(thumb)
        assert gone.status_code == 404 and gone.json()["error"] == "NotFound"


def test_concurrent_reads_reuse_the_catalogs_connections(world, runs):
    """As many threads as the server runs requests at once, each inside a read, three times over:
    every thread gets a connection, and the pool keeps them (before, a pool of 5 closed every
    connection past the fifth when it came back and opened a new one with its PRAGMAs the next
    time; past 15 a thread waited up to 30 s for one)."""
    import threading

    import sqlalchemy as sa

    from lensvault.catalog.engine import SQLITE_POOL_SIZE

    opened: list[int] = []
    with lensvault.open(world) as vault:
        engine = vault.catalog.engine
        sa.event.listen(engine, "connect", lambda *a: opened.append(1))
        together = threading.Barrier(SQLITE_POOL_SIZE, timeout=20)
        failed: list[BaseException] = []

        def reader() -> None:
            try:
                for _ in range(3):
                    with vault.catalog.read() as conn:
                        conn.exec_driver_sql("SELECT count(*) FROM runs").scalar()
                        together.wait()
            except BaseException as e:  # noqa: BLE001 (reported below)
                failed.append(e)
                together.abort()

        threads = [threading.Thread(target=reader) for _ in range(SQLITE_POOL_SIZE)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not failed, failed[:1]
    assert 0 < len(opened) <= SQLITE_POOL_SIZE


def test_the_server_runs_no_more_requests_at_once_than_the_catalog_keeps_connections(world, runs):
    from anyio.to_thread import current_default_thread_limiter
    from starlette.testclient import TestClient

    from lensvault.catalog.engine import SQLITE_POOL_SIZE
    from lensvault.server import create_app

    with TestClient(create_app(world, public_read=True)) as c:
        assert c.portal.call(lambda: current_default_thread_limiter().total_tokens) == SQLITE_POOL_SIZE


def test_the_server_runs_on_httptools_and_uvloop():
    """The server extra brings uvicorn's C HTTP parser and event loop, and the server uses them."""
    from importlib.metadata import requires

    from lensvault.server.run import uvicorn_protocols

    extra = [r for r in requires("lensvault") or [] if "extra == \"server\"" in r]
    assert any(r.startswith("httptools") for r in extra) and any(r.startswith("uvloop") for r in extra)
    assert uvicorn_protocols() == ("httptools", "uvloop")


def test_reading_runs_is_one_transaction_and_still_ends_dead_runs_first(vault, monkeypatch):
    """Listing runs and showing one look for runs whose owner died in the same read that answers
    (it was a transaction of its own before each); a dead owner's run is still ended first."""
    import sqlalchemy as sa

    from lensvault.catalog import sql
    from tests.runs.test_crashed_runs import _running_run, _set_owner

    listed, shown = _running_run(vault, "9.9.8"), _running_run(vault, "9.9.9")  # owned by this live process
    began: list[object] = []

    def count(conn) -> None:
        began.append(conn)

    begin = sql.SqliteReader.begin

    def counted_begin(reader) -> None:  # a read of a SQLite catalog: sqlite3, one transaction each
        count(reader)
        begin(reader)

    monkeypatch.setattr(sql.SqliteReader, "begin", counted_begin)
    sa.event.listen(vault.catalog.engine, "begin", count)
    try:
        assert {r["run_id"]: r["status"] for r in vault.runs()}[listed] == "running"
        assert len(began) == 1
        began.clear()
        assert vault.get_run(shown, points=True)["status"] == "running"
        assert len(began) == 1
    finally:
        sa.event.remove(vault.catalog.engine, "begin", count)
    for run_id in (listed, shown):
        _set_owner(vault, run_id, owner_started="boot/1")  # its pid now belongs to a later process
    assert vault.get_run(shown)["status"] == "crashed"  # both ended by the first read
    assert {r["run_id"]: r["status"] for r in vault.runs()}[listed] == "crashed"
    assert sorted(e["subject"] for e in vault.events(action="run.crash")) == sorted([listed, shown])


def test_listing_runs_reuses_its_compiled_statements(vault):
    """The run list's statements (the runs, then their latest metrics) are compiled once and
    taken from SQLAlchemy's cache after that: they were rendered with their values inlined,
    compiled anew on every request (half the CPU of listing 100 runs)."""
    import sqlalchemy as sa

    from tests.runs.test_crashed_runs import _running_run

    for version in ("9.9.7", "9.9.8", "9.9.9"):
        _running_run(vault, version)
    seen: list[tuple[str, object]] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, context.cache_hit if context is not None else None))

    first = vault.runs(limit=2)
    sa.event.listen(vault.catalog.engine, "before_cursor_execute", before)
    try:
        again = vault.runs(limit=2)
    finally:
        sa.event.remove(vault.catalog.engine, "before_cursor_execute", before)
    assert again == first and len(again) == 2
    reads = [(s, hit) for s, hit in seen if "FROM runs" in s or "FROM run_latest_metrics" in s]
    if vault.catalog.dialect == "sqlite":
        assert reads == []  # read through sqlite3 (catalog/sql.py): nothing for SQLAlchemy to compile
        return
    assert any("FROM run_latest_metrics" in s for s, _ in reads), seen
    from sqlalchemy.engine.interfaces import CacheStats

    assert reads and all(hit is CacheStats.CACHE_HIT for _, hit in reads), reads
