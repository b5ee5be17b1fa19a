"""The worker-process path of ingest (folders of more than ``parallel.MIN_ITEMS`` files),
the chunk mapper itself, and the per-folder stat-cache records.

Small folders are hashed in-process (and covered by every other snapshot test);
these tests make sure the forked path stores the same bytes, reports the same
errors and leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import stat
from functools import partial
from pathlib import Path

import pytest
from _lvtest import (
    assert_nothing_half_written,
    lv,
    manifest_files,
    settle,
    tmp_leftovers,
    version_refs,
    without_dac_override,
    write_files,
)

import lensvault
from lensvault import parallel
from lensvault import state as state_mod
from lensvault.errors import InputError, LensVaultError, ObjectMissing, StorageError
from lensvault.state import FileState, stat_key

N = parallel.MIN_ITEMS + 500  # enough files for the process pool


def _many(root, n=N, size=300):
    files = {f"d{i % 7}/f{i:05}.bin": (b"%06d" % i) * (size // 6) for i in range(n)}
    root = write_files(root, files)
    settle()  # older than one timestamp tick: the stat cache may trust them
    return root, files


# -- the mapper ---------------------------------------------------------------------------------------


def _square(part):
    return [x * x for x in part]


def _fail_on(bad, part):
    if bad in part:
        raise InputError("bad item", where=str(bad), fix="remove it")
    return list(part)


def test_chunk_mapper_keeps_order_across_processes():
    items = list(range(5000))
    seen = []
    with parallel.ChunkMapper(_square, chunk=97, min_items=100) as m:
        for i in range(0, len(items), 333):  # fed in uneven pieces, as a scan does
            m.feed(items[i : i + 333])
        assert m._pool is not None or parallel.worker_count() < 2
        out = [x for part in m.results(seen.append) for x in part]
    assert out == [x * x for x in items]
    assert sum(seen) == len(items)


def test_chunk_mapper_takes_batches_one_after_the_other_in_one_pool():
    """A checkout feeds a batch, takes its results, feeds the next: each call of ``results``
    yields what was fed since the last, in order, from the same worker processes."""
    seen = []
    with parallel.ChunkMapper(_square, chunk=97, min_items=100) as m:
        pools = set()
        for start in range(0, 3000, 1000):
            m.feed(list(range(start, start + 1000)))
            out = [x for part in m.results(seen.append) for x in part]
            assert out == [x * x for x in range(start, start + 1000)]
            pools.add(id(m._pool))
    assert len(pools) == 1 and sum(seen) == 3000


def test_chunk_mapper_small_input_stays_in_process():
    with parallel.ChunkMapper(_square, min_items=10_000) as m:
        m.feed([1, 2, 3])
        assert m._pool is None
        assert [x for p in m.results() for x in p] == [1, 4, 9]


def test_a_worker_error_arrives_whole():
    with pytest.raises(InputError) as ei:
        list(parallel.map_chunks(partial(_fail_on, 1234), list(range(3000)), min_items=100))
    e = ei.value
    assert (e.what, e.where, e.fix) == ("bad item", "1234", "remove it")


def test_lensvault_workers_1_means_in_process(monkeypatch):
    monkeypatch.setenv("LENSVAULT_WORKERS", "1")
    with parallel.ChunkMapper(_square, min_items=1) as m:
        m.feed(list(range(3000)))
        assert m._pool is None


def _run_python(code: str) -> str:
    import subprocess
    import sys
    import textwrap

    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_ctrl_c_is_held_until_workers_are_known_then_delivered():
    # In a child interpreter: a KeyboardInterrupt escaping here would end the pytest session.
    out = _run_python("""
        import os, signal, time
        from lensvault.parallel import sigint_held
        steps = []
        try:
            with sigint_held():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)  # unheld, the interrupt would land here
                steps.append("finished the held part")
            steps.append("after")  # never reached: the held interrupt arrives first
        except KeyboardInterrupt:
            steps.append("interrupted")
        print(steps)
    """)
    assert out == "['finished the held part', 'interrupted']"


def test_ctrl_c_during_a_threaded_copy_stops_every_thread_before_cleanup():
    # The checkout leak: Ctrl-C while the pool started a thread left that thread copying
    # after the staging folder was removed. Interrupt the pool from inside the first
    # item, then make sure nothing runs once the caller has the KeyboardInterrupt.
    out = _run_python("""
        import os, signal, threading, time
        from lensvault.store.local_files import parallel as _parallel
        calls = []
        lock = threading.Lock()
        def fn(item):
            with lock:
                calls.append(item)
                first = len(calls) == 1
            if first:
                os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.001)
        try:
            _parallel(fn, list(range(20_000)), batch=16)
            print("not interrupted")
        except KeyboardInterrupt:
            at_cleanup = len(calls)
            time.sleep(0.3)
            print(at_cleanup, len(calls), threading.active_count())
    """)
    at_cleanup, later, threads = map(int, out.split())
    assert at_cleanup == later  # no thread ran an item after the caller's cleanup began
    assert later < 20_000  # queued batches were dropped, not run
    assert threads == 1


# -- snapshots through the workers ---------------------------------------------------------------------


@pytest.mark.parametrize("link", ["hardlink", "copy"])
def test_worker_snapshot_stores_exactly_the_files(sqlite_vault, tmp_path, link):
    src, files = _many(tmp_path / "src")
    v = sqlite_vault.snapshot("ds", src, version="1.0.0", link=link)
    got = dict(zip(*[v.files()[c].to_pylist() for c in ("path", "sha256")]))
    assert got == {rel: hashlib.sha256(data).hexdigest() for rel, data in files.items()}
    store = sqlite_vault.store
    for oid in set(got.values()):
        p = store.oid_to_path(oid)
        assert p.read_bytes() == files[next(r for r, o in got.items() if o == oid)]
        assert not os.stat(p).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    if link == "hardlink":
        rel = "d3/f00010.bin"
        assert os.stat(src / rel).st_ino == os.stat(store.oid_to_path(got[rel])).st_ino
    assert tmp_leftovers(sqlite_vault) == [] and sqlite_vault.verify().ok
    # The folder's cache record now holds every file's current stat: nothing is read again.
    index = sqlite_vault.state.index(os.path.realpath(src))
    assert len(index) == len(files)
    assert all(index[rel][:4] == stat_key(os.stat(src / rel)) for rel in files)
    again = sqlite_vault.snapshot("ds", src, version="1.0.1", link=link, force=True)
    assert again.snapshot_id == v.snapshot_id


@pytest.mark.parametrize("batch", [None, 600])
@pytest.mark.parametrize("link", ["hardlink", "symlink"])
def test_worker_checkout_links_every_file_and_reports_missing_objects(sqlite_vault, tmp_path, link, batch,
                                                                      monkeypatch):
    if batch:  # batches of the checkout fed one after the other to the same workers
        from lensvault.datasets import listing

        monkeypatch.setattr(listing, "BATCH_ROWS", batch)
    src, files = _many(tmp_path / "src")
    v = sqlite_vault.snapshot("ds", src, version="1.0.0", link="copy")
    sqlite_vault.checkout("ds@1.0.0", tmp_path / "out", link=link)
    store = sqlite_vault.store
    got = dict(zip(*[v.files()[c].to_pylist() for c in ("path", "sha256")]))
    for rel, data in files.items():
        out = tmp_path / "out" / rel
        assert out.read_bytes() == data
        if link == "hardlink":
            assert os.stat(out).st_ino == os.stat(store.oid_to_path(got[rel])).st_ino
        else:
            assert os.readlink(out) == str(store.oid_to_path(got[rel]))
    if link == "hardlink":  # (symlinks into the store lead outside the folder: status refuses them)
        assert sqlite_vault.status("ds@1.0.0", tmp_path / "out").clean

    lost = sorted(got.values())[-3:]  # late in path order: found by a worker, after others linked
    for oid in lost:
        os.unlink(store.oid_to_path(oid))
    with pytest.raises(ObjectMissing) as ei:
        sqlite_vault.checkout("ds@1.0.0", tmp_path / "again" / "out", link=link)
    assert ei.value.details["missing"] == lost
    assert os.listdir(tmp_path / "again") == []


def test_worker_snapshot_of_an_unreadable_file_is_a_clear_error(sqlite_vault, tmp_path):
    src, _ = _many(tmp_path / "src")
    bad = src / "d5/f00040.bin"
    os.chmod(bad, 0)
    # root reads anything; drop CAP_DAC_OVERRIDE the way the other permission tests do
    r = lv("--vault", sqlite_vault.root, "dataset", "snapshot", "ds", src, "--version", "1.0.0",
           prefix=without_dac_override())
    os.chmod(bad, 0o644)
    assert r.returncode == 6, r.stderr
    assert "permission denied" in r.stderr and str(bad) in r.stderr and "fix:" in r.stderr
    assert "Traceback" not in r.stderr
    assert version_refs(sqlite_vault) == [] and tmp_leftovers(sqlite_vault) == []


def test_a_full_disk_during_a_worker_copy_snapshot(tmp_path, small_tmpfs):
    disk = small_tmpfs("1m")
    vault = lensvault.init(tmp_path / "vault", store=str(disk / "objects"))
    try:
        src, _ = _many(tmp_path / "src", size=1200)  # ~2.4 MB of distinct files
        refs, mans = version_refs(vault), manifest_files(vault)
        with pytest.raises(StorageError) as ei:
            vault.snapshot("ds", src, version="1.0.0", link="copy")
        e = ei.value
        assert "disk is full" in e.what and "free some space" in e.fix and e.where
        assert_nothing_half_written(vault, refs_before=refs, manifests_before=mans)
    finally:
        vault.close()


# -- the cache records ---------------------------------------------------------------------------------


def test_a_damaged_cache_record_is_a_miss_not_a_wrong_hash(sqlite_vault, tmp_path):
    src = write_files(tmp_path / "src", {"a.txt": "a", "b.txt": "b"})
    first = sqlite_vault.snapshot("ds", src, version="1.0.0")
    state: FileState = sqlite_vault.state
    path = state._path("index", os.path.realpath(src))
    data = bytearray(Path(path).read_bytes())
    # Point a.txt's cached hash at b.txt's content, keeping the record decodable.
    good = hashlib.sha256(b"a").hexdigest().encode()
    evil = hashlib.sha256(b"b").hexdigest().encode()
    assert good in data
    data[data.index(good):data.index(good) + len(good)] = evil
    with open(path, "wb") as f:
        f.write(bytes(data))
    assert state.index(os.path.realpath(src)) == {}  # the checksum catches it
    second = sqlite_vault.snapshot("ds", src, version="1.0.1", force=True)
    assert second.snapshot_id == first.snapshot_id


def test_a_cache_record_from_another_interpreter_is_a_miss(tmp_path):
    state = FileState(tmp_path / "cache")
    state.save_listing("s1", [("a", "0" * 64, 1, "text/plain", None, None)])
    p = state._path("listing", "s1")
    raw = Path(p).read_bytes()
    with open(p, "wb") as f:
        f.write(raw.replace(state_mod._TAG, state_mod._TAG + b"-pypy", 1))
    assert state.listing("s1") is None


def test_an_unwritable_cache_does_not_fail_a_snapshot(sqlite_vault, tmp_path):
    src = write_files(tmp_path / "src", {"a.txt": "a"})
    cache = sqlite_vault.dir / "cache"
    cache.mkdir(exist_ok=True)
    (cache / "index").write_text("a file where the index folder should be")
    v = sqlite_vault.snapshot("ds", src, version="1.0.0")
    assert v.record.files == 1 and sqlite_vault.status("ds@1.0.0", src).clean


def test_worker_error_class_survives_pickling():
    import pickle

    for e in (InputError("x", where="w", fix="f"), StorageError("the disk is full", where="/s", fix="free"),
              LensVaultError("y", where="w2", fix="f2")):
        e2 = pickle.loads(pickle.dumps(e))
        assert type(e2) is type(e) and (e2.what, e2.where, e2.fix) == (e.what, e.where, e.fix)


# -- a big folder walked by two processes ------------------------------------------------------------


def test_status_of_a_big_folder_walked_in_two(sqlite_vault, tmp_path):
    files = {f"d{i % 10}/f{i:05}.bin": b"%05d" % i for i in range(5200)}
    files["top.txt"] = b"top"
    src = write_files(tmp_path / "src", files)
    sqlite_vault.snapshot("ds", src, version="1.0.0")
    (src / "d7/f00017.bin").write_bytes(b"changed")
    (src / "d2/new.bin").write_bytes(b"new")
    (src / "d4/f00004.bin").unlink()
    (src / "top.txt").write_bytes(b"top, changed")
    st = sqlite_vault.status("ds@1.0.0", src)
    assert (st.added, st.removed, st.modified) == (["d2/new.bin"], ["d4/f00004.bin"], ["d7/f00017.bin", "top.txt"])
    assert st.unchanged == len(files) - 3


def test_a_symlinked_folder_sends_the_walk_back_to_one_process(sqlite_vault, tmp_path):
    files = {f"d{i % 10}/f{i:05}.bin": b"%05d" % i for i in range(5200)}
    src = write_files(tmp_path / "src", files)
    os.symlink(src / "d3", src / "link-to-d3")
    v = sqlite_vault.snapshot("ds", src, version="1.0.0")
    assert v.record.files == 5200 + 520  # d3's files twice: once through the link
    got = dict(zip(*[v.files()[c].to_pylist() for c in ("path", "sha256")]))
    assert got["link-to-d3/f00003.bin"] == got["d3/f00003.bin"] == hashlib.sha256(b"00003").hexdigest()
    assert sqlite_vault.status("ds@1.0.0", src).clean
    (src / "d3/f00013.bin").write_bytes(b"changed")
    (src / "d3/new.bin").write_bytes(b"new")
    settle()
    st = sqlite_vault.status("ds@1.0.0", src)
    assert st.modified == ["d3/f00013.bin", "link-to-d3/f00013.bin"]
    assert st.added == ["d3/new.bin", "link-to-d3/new.bin"] and st.unchanged == 5200 + 520 - 2


@pytest.mark.parametrize("link", ["copy", "hardlink"])
def test_a_file_bigger_than_the_read_buffer_is_streamed(sqlite_vault, tmp_path, link):
    """Files over hashing.SMALL_FILE are hashed (and, copying, staged) chunk by chunk."""
    from lensvault.hashing import SMALL_FILE

    big = os.urandom(SMALL_FILE + 123_457)
    src = write_files(tmp_path / "src", {"big.bin": big, "twin.bin": big, "small.txt": "s"})
    v = sqlite_vault.snapshot("ds", src, version="1.0.0", link=link)
    got = dict(zip(*[v.files()[c].to_pylist() for c in ("path", "sha256")]))
    oid = hashlib.sha256(big).hexdigest()
    assert got["big.bin"] == got["twin.bin"] == oid
    assert sqlite_vault.store.oid_to_path(oid).read_bytes() == big
    assert tmp_leftovers(sqlite_vault) == [] and sqlite_vault.verify().ok


def test_a_ctrl_c_while_waiting_for_the_files_table_writer_lets_it_finish(sqlite_vault, monkeypatch):
    """The files table is written into the store by a forked child. A Ctrl-C while the command
    waits for it must not kill it mid-write (its temp file stayed in the store's tmp)."""
    import signal
    import time

    from lensvault.datasets.files_table import FileRows

    def slow_put(rows, store):  # a write that takes a while, its temp file in the store meanwhile
        files = store.local()
        tmp = files.temp_path()
        Path(tmp).write_bytes(b"part of a table")
        time.sleep(0.6)
        os.unlink(tmp)
        return store.put_bytes(b"the table")

    monkeypatch.setattr(FileRows, "_put_parquet", slow_put)  # the child is forked from here: it runs this
    index = {f"f{i}.bin": (i, 1, 1, 1, hashlib.sha256(b"%d" % i).hexdigest(), None, None, None) for i in range(100)}
    for wait in (FileRows.stored_oid, lambda rows, store: rows.abandon_store()):
        rows = FileRows.from_index(index)
        rows.store_in_background(sqlite_vault.store)
        assert rows.storing
        previous = signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        signal.setitimer(signal.ITIMER_REAL, 0.2)  # a Ctrl-C while we wait for the writer
        try:
            with pytest.raises(KeyboardInterrupt):
                wait(rows, sqlite_vault.store)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        assert tmp_leftovers(sqlite_vault) == []
