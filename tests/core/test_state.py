"""The stat cache's folder records (base + delta), and the files-table writer that runs beside them.

Everything here works on real files: records under a real cache folder, real
snapshots of real folders, a real forked writer process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from _lvtest import settle, tmp_leftovers, write_files

from lensvault.datasets import files_table
from lensvault.datasets.ingest import ingest_folder
from lensvault.errors import UsageError
from lensvault.state import FileState


def _entry(i: int, oid: str | None = None) -> tuple:
    return (1000 + i, 10 + i, 5_000 + i, 6_000 + i, oid or f"{i:064x}", "text/plain", None, None)


def _records(state: FileState, kind: str) -> list[str]:
    d = os.path.join(state.root, kind)
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


# -- base and delta records ----------------------------------------------------------------------------


def test_a_small_change_is_saved_as_a_delta_and_read_back_merged(tmp_path):
    state = FileState(tmp_path / "cache")
    entries = {f"d/{i:04}": _entry(i) for i in range(1000)}
    state.save_index("/data", entries, digest="d1")
    base = Path(state._path("index", "/data")).read_bytes()

    got = state.index("/data")
    assert got == entries and state.index_digest("/data") == "d1"
    got["d/0007"] = _entry(7, "a" * 64)  # modified
    got["d/0500a"] = _entry(2000)  # added
    del got["d/0999"]  # removed
    state.save_index("/data", got, changed=["d/0007", "d/0500a", "d/0999"], digest="d2")

    assert Path(state._path("index", "/data")).read_bytes() == base  # the 1,000-entry base is untouched
    assert _records(state, "delta")
    fresh = FileState(tmp_path / "cache")  # another process
    merged = fresh.index("/data")
    assert merged == got
    assert list(merged) == sorted(merged)  # in path order, the added path in its place
    assert fresh.index_digest("/data") == "d2"


def test_deltas_accumulate_until_the_base_is_rewritten(tmp_path):
    state = FileState(tmp_path / "cache")
    entries = {f"{i:05}": _entry(i) for i in range(5000)}
    state.save_index("/data", entries)
    for i in range(0, 150, 10):  # 15 saves of 10 changes: 150 changed entries, under 5000 / 50
        cur = state.index("/data")
        for j in range(i, i + 10):
            cur[f"{j:05}"] = _entry(j, "b" * 64)
        state.save_index("/data", cur, changed=[f"{j:05}" for j in range(i, i + 10)])
    assert _records(state, "delta")
    assert FileState(tmp_path / "cache").index("/data") == cur

    cur = state.index("/data")
    many = [f"{j:05}" for j in range(1000, 1200)]  # the delta would now hold 350 > 100 entries
    for rel in many:
        cur[rel] = _entry(int(rel), "c" * 64)
    state.save_index("/data", cur, changed=many)
    assert _records(state, "delta") == []  # folded into a new base
    assert FileState(tmp_path / "cache").index("/data") == cur


def test_a_delta_for_a_base_that_was_rewritten_since_is_ignored(tmp_path):
    a, b = FileState(tmp_path / "cache"), FileState(tmp_path / "cache")
    a.save_index("/data", {"x": _entry(1), "y": _entry(2)})
    seen_by_a = a.index("/data")
    b.index("/data")
    b.save_index("/data", {"x": _entry(1), "y": _entry(2), "z": _entry(3)})  # another process rewrites the base
    seen_by_a["x"] = _entry(1, "f" * 64)
    a.save_index("/data", seen_by_a, changed=["x"])  # a delta against the old base
    assert FileState(tmp_path / "cache").index("/data") == {"x": _entry(1), "y": _entry(2), "z": _entry(3)}


def test_a_damaged_delta_is_a_miss_of_the_delta_only(tmp_path):
    state = FileState(tmp_path / "cache")
    state.save_index("/data", {"x": _entry(1)})
    cur = state.index("/data")
    cur["x"] = _entry(1, "e" * 64)
    state.save_index("/data", cur, changed=["x"])
    path = state._path("delta", "/data")
    data = bytearray(Path(path).read_bytes())
    data[-3] ^= 0xFF
    Path(path).write_bytes(bytes(data))
    assert FileState(tmp_path / "cache").index("/data") == {"x": _entry(1)}  # the base, as before the delta


class _Counting(FileState):
    """A real FileState that also notes how many entries each record it writes holds."""

    def __init__(self, root):
        super().__init__(root)
        self.written: list[tuple[str, int]] = []  # (kind, entries)

    def _write_path(self, path, payload):
        kind = "delta" if f"{os.sep}delta{os.sep}" in path else "index"
        self.written.append((kind, len(payload[1])))
        return super()._write_path(path, payload)

    def index_writer(self, folder):
        writer = super().index_writer(folder)
        written, add = self.written, writer.add
        written.append(("index", 0))
        at = len(written) - 1

        def counted(rel, entry):
            written[at] = ("index", written[at][1] + 1)
            add(rel, entry)

        writer.add = counted
        return writer


def _one_change_per_save(root, n_entries: int, saves: int) -> _Counting:
    state = _Counting(root)
    state.save_index("/data", {f"{i:06}": _entry(i) for i in range(n_entries)})
    for k in range(saves):
        cur = state.index("/data")
        cur[f"{k:06}"] = _entry(k, "d" * 64)
        state.save_index("/data", cur, changed=[f"{k:06}"])
    return state


def test_what_a_save_writes_follows_the_changes_not_the_folder(tmp_path):
    """64 saves of one changed file each: the entries they write are the same for a folder of
    4,000 or 40,000 files, and add up to about changes x log2(changes) (one growing delta
    rewritten by every save wrote 1 + 2 + … + 64 = 2,080); the base is never rewritten."""
    small = _one_change_per_save(tmp_path / "small", 4_000, 64)
    big = _one_change_per_save(tmp_path / "big", 40_000, 64)
    assert small.written[1:] == big.written[1:]
    assert [kind for kind, _ in big.written[1:]] == ["delta"] * 64
    assert sum(n for _, n in big.written[1:]) <= 64 * 7
    expected = {f"{i:06}": _entry(i, "d" * 64) if i < 64 else _entry(i) for i in range(40_000)}
    assert FileState(tmp_path / "big").index("/data") == expected
    assert len(_records(big, "delta")) <= 7  # segments: at most log2(changes) + 1


def test_reading_the_cache_writes_nothing(tmp_path):
    _one_change_per_save(tmp_path / "c", 2_000, 37)
    files = [p for p in (tmp_path / "c").rglob("*") if p.is_file()]

    def stats():
        return {str(p): (p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_size) for p in files}

    before = stats()
    for _ in range(2):
        FileState(tmp_path / "c").index("/data")
    assert stats() == before and sorted(p for p in (tmp_path / "c").rglob("*") if p.is_file()) == sorted(files)


def test_segments_of_adds_changes_and_removals_read_back_as_saved(tmp_path):
    import random

    rnd = random.Random(5)
    state = FileState(tmp_path / "cache")
    cur = {f"{i:05}": _entry(i) for i in range(3000)}
    state.save_index("/data", cur, digest="d0")
    for k in range(40):
        cur = state.index("/data")
        changed = []
        for _ in range(rnd.randint(1, 5)):
            rel = f"{rnd.randrange(3500):05}"
            if rel in cur and rnd.random() < 0.3:
                del cur[rel]
            else:
                cur[rel] = _entry(int(rel), f"{k:064x}")
            changed.append(rel)
        state.save_index("/data", dict(sorted(cur.items())), changed=changed, digest=f"d{k + 1}")
        fresh = FileState(tmp_path / "cache")
        got = fresh.index("/data")
        assert got == cur and list(got) == sorted(got) and fresh.index_digest("/data") == f"d{k + 1}"
    assert Path(state._path("index", "/data")).stat().st_size > 0 and _records(state, "delta")


# -- through snapshots ------------------------------------------------------------------------------


def test_resnapshot_with_one_change_writes_a_delta_and_the_next_one_reads_it(sqlite_vault, tmp_path):
    vault = sqlite_vault
    src = write_files(tmp_path / "src", {f"d{i % 5}/f{i:04}.txt": f"file {i}" for i in range(300)})
    settle()
    vault.snapshot("ds", src, version="1.0.0")
    folder = os.path.realpath(src)
    assert vault.state.index_digest(folder) is not None
    base = Path(vault.state._path("index", folder)).read_bytes()

    (src / "d1/f0001.txt").write_text("changed")
    (src / "d2/new.txt").write_text("new")
    settle()
    v2 = vault.snapshot("ds", src, version="1.1.0")
    assert Path(vault.state._path("index", folder)).read_bytes() == base
    assert _records(vault.state, "delta")

    fresh = FileState(vault.state.root)
    entries = fresh.index(folder)
    assert len(entries) == 301 and entries["d2/new.txt"][4] == v2.files()["sha256"][
        v2.files()["path"].to_pylist().index("d2/new.txt")].as_py()
    assert fresh.index_digest(folder) == v2.manifest().tables["files"]["digest"]
    assert vault.status("ds@1.1.0", src).clean


def test_the_files_table_written_in_the_background_is_the_one_written_in_process(sqlite_vault, tmp_path):
    vault = sqlite_vault
    src = write_files(tmp_path / "src", {f"f{i:03}.txt": f"file {i}" for i in range(50)})
    vault.snapshot("ds", src, version="1.0.0")
    (src / "f007.txt").write_text("changed")
    rows = ingest_folder(vault, src, link="copy")
    if os.name == "posix" and rows.storing is False:
        pytest.skip("another thread runs in this test process, so the writer stays in-process")
    assert rows.storing
    oid = rows.stored_oid(vault.store)
    assert not rows.storing
    in_process = files_table.to_parquet_bytes(rows.table())
    assert vault.store.read_bytes(oid) == in_process  # same bytes, with or without NumPy in the writer
    assert files_table.read(in_process).equals(rows.table())


@pytest.mark.parametrize("how", [{"version": "1.0.1"}, {"bump": "auto"}])
def test_a_refused_version_waits_for_its_background_writer(sqlite_vault, tmp_path, how):
    # Refused in the commit (an explicit version) or before it (the bump finds no change).
    vault = sqlite_vault
    src = write_files(tmp_path / "src", {f"f{i:03}.txt": f"file {i}" for i in range(50)})
    vault.snapshot("ds", src, version="1.0.0")
    p = src / "f003.txt"
    os.utime(p, ns=(time.time_ns(), time.time_ns() + 10**9))  # a new stat, the same content
    with pytest.raises(UsageError, match="nothing changed"):
        vault.snapshot("ds", src, **how)
    assert tmp_leftovers(vault) == []
    assert _children() == []  # the writer was waited for, not left running or unreaped


def _children() -> list[str]:
    """This process's children (running or zombie), from /proc."""
    me, out = os.getpid(), []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == me:
            out.append(f"{pid} {fields[0]}")
    return out


def test_reading_a_files_table_starts_no_arrow_threads():
    # Arrow's CPU pool threads still alive at interpreter exit abort the process now
    # and then ("terminate called without an active exception", exit -6).
    code = textwrap.dedent("""
        import os
        from lensvault.datasets import files_table as ft
        n = 20000
        rows = ft.FileRows([f"d/{i:06}" for i in range(n)], list(range(n)), [f"{i:064x}" for i in range(n)],
                           ["image/png"] * n, [10] * n, [None] * n)
        data = ft.to_parquet_bytes(rows.table())
        before = len(os.listdir("/proc/self/task"))
        ft.read(data)
        ft.read(data, columns=["path", "sha256"])
        print(before, len(os.listdir("/proc/self/task")))
    """)
    if not os.path.isdir("/proc/self/task"):
        pytest.skip("needs Linux /proc")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    before, after = map(int, r.stdout.split())
    assert after == before


def test_vision_counts_start_no_arrow_threads(tmp_path):
    # The same risk as above, for the per-class counts of `dataset show` (Arrow's group_by).
    if not os.path.isdir("/proc/self/task"):
        pytest.skip("needs Linux /proc")
    shared = os.path.join(os.path.dirname(__file__), "..", "data", "bccd")
    code = textwrap.dedent(f"""
        import os
        import lensvault
        vault = lensvault.init({str(tmp_path / "vault")!r})
        ds = vault.snapshot("bccd", {os.path.abspath(shared)!r}, version="1.0.0", format="voc", link="copy")
        ds.images(), ds.annotations()
        before = len(os.listdir("/proc/self/task"))
        summary = ds.vision_summary()
        print(before, len(os.listdir("/proc/self/task")), summary["annotations"])
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    before, after, annotations = map(int, r.stdout.split())
    assert annotations == 898 and after == before


def test_a_resnapshot_holds_no_row_per_file(sqlite_vault, tmp_path, monkeypatch):
    """The folder's record is the latest version's table. Nothing changed: the new version is that
    table (its oid, digest, rows, bytes and media types, from the manifest). Files changed: the
    new table is the record with the changes merged in, a row group at a time. Either way no
    row per file is built."""
    from PIL import Image

    vault = sqlite_vault
    monkeypatch.setattr(files_table, "SPOOL_FROM", 0)  # (as for a folder bigger than one row group)
    src = write_files(tmp_path / "src", {f"d{i % 3}/f{i:03}.txt": f"file {i}" for i in range(40)})
    Image.new("RGB", (7, 5), "red").save(src / "d1" / "red.png")
    settle()
    v1 = vault.snapshot("ds", src, version="1.0.0")
    built: list[int] = []
    real = files_table.FileRows.from_index.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(files_table.FileRows, "from_index",
                        classmethod(lambda cls, index, **kw: (built.append(len(index)), real(cls, index, **kw))[1]))
    v2 = vault.snapshot("ds", src, version="1.0.1", force=True)
    assert built == []
    m1, m2 = v1.manifest(), v2.manifest()
    assert m2.tables["files"] == m1.tables["files"] and m2.counts == m1.counts and m2.media_types == m1.media_types
    assert m2.snapshot_id == m1.snapshot_id and m2.media_types["image/png"] == 1
    with pytest.raises(UsageError, match="nothing changed"):
        vault.snapshot("ds", src, version="1.0.2")  # without --force: refused, as before
    with pytest.raises(UsageError, match="nothing changed"):
        vault.snapshot("ds", src, bump="auto")

    # Changed (one file edited, one added, one removed): still no row per file held; the table is
    # the record merged with the changes, written as it is built, byte for byte the table a
    # first snapshot of the same folder writes from its rows.
    (src / "d0" / "f000.txt").write_text("changed")
    (src / "d2" / "new.txt").write_text("new")
    (src / "d1" / "f001.txt").unlink()
    settle()
    v3 = vault.snapshot("ds", src, version="1.0.2")
    assert built == []
    import lensvault

    other = lensvault.init(tmp_path / "other")
    try:
        fresh = other.snapshot("ds", src, version="1.0.0", link="copy")
        assert built == []  # (a new folder past SPOOL_FROM: streamed as well)
        assert v3.manifest().tables["files"] == fresh.manifest().tables["files"]
        assert v3.manifest().counts == fresh.manifest().counts
        assert v3.manifest().media_types == fresh.manifest().media_types
    finally:
        other.close()
    assert vault.status("ds@1.0.2", src).clean and vault.verify().ok
    (src / "d2" / "f002.txt").write_text("again")
    settle()
    v4 = vault.snapshot("ds", src, bump="auto")  # the bump reads the table back
    assert v4.version == "1.0.3" and built == []
    monkeypatch.setattr(files_table, "SPOOL_FROM", 65_536)  # a small table: built in memory, the same
    (src / "d2" / "f005.txt").write_text("once more")
    settle()
    v5 = vault.snapshot("ds", src, version="1.0.4")
    assert built == [41] and vault.status("ds@1.0.4", src).clean and vault.verify().ok
    assert v5.manifest().tables["files"]["digest"] != v4.manifest().tables["files"]["digest"]


@pytest.mark.parametrize("link", ["hardlink", "copy"])
def test_a_new_folder_streamed_in_windows_is_the_folder_and_a_failure_leaves_no_temp_file(tmp_path, monkeypatch, link):
    """A new folder past SPOOL_FROM is a stream (datasets/new_folder.py): the walk held back while
    AHEAD files wait for workers, copies renamed into the store and learned keys recorded WINDOW
    at a time. Scaled down here so that every one of those turns many times: the version is the
    one a snapshot held in memory makes, byte for byte, the folder is clean against it, and the
    next snapshot reads nothing. A file that cannot be read midway stops it with nothing left in
    the store's temp folder, no version and no record; the command run again works."""
    import lensvault
    from lensvault.datasets import ingest_worker, new_folder

    src = write_files(tmp_path / "src", {f"d{i % 9}/f{i:05}.txt": f"file {i} " * (i % 5 + 1) for i in range(3000)})
    settle()
    plain = lensvault.init(tmp_path / "plain")
    expected = plain.snapshot("ds", src, version="1.0.0", link="copy").manifest().tables["files"]
    plain.close()

    monkeypatch.setattr(files_table, "SPOOL_FROM", 100)
    monkeypatch.setattr(new_folder, "AHEAD", 600)
    monkeypatch.setattr(new_folder, "WINDOW", 500)
    bad = str(src / "d4" / "f01804.txt")
    real = ingest_worker.hash_one

    def failing(path, *rest):
        if path == bad:
            raise ingest_worker.read_error(path, PermissionError(13, "Permission denied"))
        return real(path, *rest)

    vault = lensvault.init(tmp_path / "vault")
    try:
        monkeypatch.setattr(ingest_worker, "hash_one", failing)  # (the workers are forked: they see it too)
        with pytest.raises(lensvault.errors.InputError, match="cannot be read"):
            vault.snapshot("ds", src, version="1.0.0", link=link)
        assert tmp_leftovers(vault) == [] and vault.datasets() == []
        assert vault.state.open_index(os.path.realpath(src)) is None  # no record: the next one reads all
        monkeypatch.setattr(ingest_worker, "hash_one", real)
        v1 = vault.snapshot("ds", src, version="1.0.0", link=link)
        assert v1.manifest().tables["files"]["digest"] == expected["digest"]
        assert v1.manifest().tables["files"]["oid"] == expected["oid"]  # the same Parquet bytes
        assert vault.status("ds@1.0.0", src).clean and vault.verify().ok and tmp_leftovers(vault) == []
        hashed: list[str] = []
        monkeypatch.setattr(ingest_worker, "hash_one", lambda p, *rest: (hashed.append(p), real(p, *rest))[1])
        vault.snapshot("ds", src, version="1.0.1", link=link, force=True)
        assert hashed == []  # the streamed record is the folder
    finally:
        vault.close()
