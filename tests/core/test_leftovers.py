"""What a killed command leaves behind, gc finds, reports and removes — and never a live writer's.

Temp files, pins and staging folders are named after (or recorded with) the process that
made them (store/owner.py, store/leftovers.py): gone → gc removes them whatever the grace
period; alive → left alone whatever their age; from another host → removed once older
than the grace period.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from _lvtest import LV, _env, lv, settle, tmp_leftovers, version_refs, write_files


def _many(root: Path, n: int = 2500) -> Path:
    for i in range(n):
        p = root / f"d{i % 10}" / f"f{i:05}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"%06d" % i * 300)
    settle()
    return root


def _start(*args, **kw) -> subprocess.Popen:
    return subprocess.Popen([*LV, *map(str, args)], env=_env(kw.get("env")), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _when(cond, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if proc.poll() is not None:
            pytest.fail(f"the command ended (rc={proc.returncode}) before the moment the test waits for")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the moment never came")
        time.sleep(0.002)


def _group_gone(pgid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.01)
    return False


def test_gc_reports_and_removes_the_temp_files_of_a_killed_snapshot(sqlite_vault, tmp_path):
    src = _many(tmp_path / "src")
    proc = _start("--vault", sqlite_vault.root, "dataset", "snapshot", "ds", src, "--version", "1.0.0", "--link", "copy")
    _when(lambda: len(tmp_leftovers(sqlite_vault)) > 20, proc)
    os.kill(proc.pid, signal.SIGKILL)  # the main process only, as `kill -9 PID` does
    proc.wait()
    # Its worker processes die with it instead of living on with half-written files.
    assert _group_gone(proc.pid), "worker processes outlived their killed parent"
    left = tmp_leftovers(sqlite_vault)
    assert left and version_refs(sqlite_vault) == []
    r = lv("--vault", sqlite_vault.root, "gc", "--json")  # the default grace: the writer is gone, so they go
    plan = json.loads(r.stdout)["plan"]
    kinds = {x["kind"] for x in plan["leftovers"]}
    assert "store temp file" in kinds and len(plan["leftovers"]) >= len(left)
    assert plan["leftover_bytes"] == sum(x["bytes"] for x in plan["leftovers"]) > 0
    r = lv("--vault", sqlite_vault.root, "gc")
    assert "left behind by interrupted commands" in r.stdout and "store temp file" in r.stdout
    r = lv("--vault", sqlite_vault.root, "gc", "--yes")
    assert r.returncode == 0 and "removed" in r.stdout
    assert tmp_leftovers(sqlite_vault) == [] and sqlite_vault.verify().ok
    assert sqlite_vault.events(action="gc")[-1]["after"]["leftovers"] >= len(left)


def test_gc_removes_the_staging_folder_of_a_killed_checkout(sqlite_vault, tmp_path):
    src = _many(tmp_path / "src")
    sqlite_vault.snapshot("ds", src, version="1.0.0")
    out = tmp_path / "out"
    out.mkdir()
    proc = _start("--vault", sqlite_vault.root, "dataset", "checkout", "ds@1.0.0", out / "co", "--link", "copy")

    def staging_filled():
        found = [e.path for e in os.scandir(out) if e.name.startswith(".lensvault-checkout-")]
        return bool(found) and any(os.scandir(found[0]))

    _when(staging_filled, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    staging = [n for n in os.listdir(out) if n.startswith(".lensvault-checkout-")]
    assert staging and not (out / "co").exists()
    plan = sqlite_vault.gc()
    assert [(x.kind, x.path) for x in plan.leftovers if x.kind == "staging folder"] == [
        ("staging folder", str(out / staging[0]))]
    plan.execute()
    assert os.listdir(out) == [] and not os.listdir(sqlite_vault.dir / "staging")
    sqlite_vault.checkout("ds@1.0.0", out / "co")  # and the retry works


def test_a_live_writers_temp_files_and_pins_survive_gc_with_no_grace(sqlite_vault, tmp_path):
    """gc --grace 0 --force beside a stopped (but live) snapshot: it removes none of its files,
    deletes none of the objects it relies on, and the snapshot then commits a whole version."""
    src = _many(tmp_path / "src")
    orphans = write_files(tmp_path / "orphans", {f"o{i}.bin": b"%06d" % i * 300 for i in range(0, 2500, 7)})
    # Objects of an earlier, abandoned write that this snapshot will deduplicate against.
    from lensvault.hashing import hash_file

    sqlite_vault.store.put_files([(str(p), hash_file(p).oid) for p in orphans.iterdir()])
    sqlite_vault.store.release_pins()
    proc = _start("--vault", sqlite_vault.root, "dataset", "snapshot", "ds", src, "--version", "1.0.0", "--link", "copy",
                  env={"LENSVAULT_WORKERS": "1"})
    _when(lambda: len(tmp_leftovers(sqlite_vault)) > 50, proc)
    os.killpg(proc.pid, signal.SIGSTOP)
    try:
        before = tmp_leftovers(sqlite_vault)
        r = lv("--vault", sqlite_vault.root, "gc", "--grace", "0", "--force", "--yes")
        assert r.returncode == 0, r.stderr
        assert set(before) <= set(tmp_leftovers(sqlite_vault))  # none of the live writer's files went
    finally:
        os.killpg(proc.pid, signal.SIGCONT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert version_refs(sqlite_vault) == ["ds@1.0.0"] and sqlite_vault.verify().ok
    assert tmp_leftovers(sqlite_vault) == []


def test_leftovers_of_another_host_go_only_after_the_grace_period(sqlite_vault):
    tmp = Path(sqlite_vault.store.root) / "tmp"
    old, young = tmp / "ffffffff.1.1-old.tmp", tmp / "ffffffff.1.1-young.tmp"
    legacy = tmp / ("0" * 32 + ".tmp")  # a name without an owner (an older LensVault)
    for p in (old, young, legacy):
        p.write_bytes(b"x" * 10)
    hour_ago = time.time() - 7200
    os.utime(old, (hour_ago, hour_ago))
    os.utime(legacy, (hour_ago, hour_ago))
    plan = sqlite_vault.gc()
    assert sorted(x.path for x in plan.leftovers) == sorted([str(old), str(legacy)])
    plan.execute()
    assert os.listdir(tmp) == [young.name]


def test_a_ref_temp_file_left_in_the_ledger_goes_after_the_grace_period(sqlite_vault, tmp_path):
    sqlite_vault.snapshot("ds", write_files(tmp_path / "src", {"a.txt": "a"}), version="1.0.0")
    ledgers = Path(sqlite_vault.store.root) / "ledgers"
    folder = next(Path(d) for d, _, files in os.walk(ledgers) if files)
    stray = folder / ".entry.0123.tmp"
    stray.write_bytes(b"half a ref")
    assert not [x for x in sqlite_vault.gc().leftovers if x.path == str(stray)]  # young, owner unknown
    hour_ago = time.time() - 7200
    os.utime(stray, (hour_ago, hour_ago))
    plan = sqlite_vault.gc()
    assert [(x.kind, x.path) for x in plan.leftovers] == [("ledger temp file", str(stray))]
    plan.execute()
    assert not stray.exists() and sqlite_vault.verify().ok


def test_a_scratch_folder_of_a_killed_fix_is_removed(sqlite_vault):
    dead = "deadbeef"  # not this host: the grace period decides
    scratch = sqlite_vault.dir / f"fix-{dead}.1.1-abcd"
    (scratch / "data").mkdir(parents=True)
    (scratch / "data" / "x.json").write_text("{}")
    os.chmod(scratch / "data", 0o555)  # even a read-only folder inside
    assert sqlite_vault.gc().leftovers == []
    hour_ago = time.time() - 7200
    os.utime(scratch, (hour_ago, hour_ago))
    plan = sqlite_vault.gc()
    assert [(x.kind, x.path) for x in plan.leftovers] == [("scratch folder", str(scratch))]
    plan.execute()
    assert not scratch.exists()


def test_pins_of_a_dead_writer_are_dropped_and_a_live_ones_kept_whatever_the_grace(sqlite_vault, tmp_path):
    store = sqlite_vault.store
    live = store.put_bytes(b"pinned by this live process")
    r = subprocess.run([*LV[:1], "-c", ("import lensvault, sys; v = lensvault.open(sys.argv[1]); "
                        "print(v.store.put_bytes(b'pinned by a process that is gone'))"), sqlite_vault.root],
                       capture_output=True, text=True, env=_env(None))
    dead = r.stdout.strip()
    assert store.has(dead), r.stderr
    plan = sqlite_vault.gc(grace_seconds=0, force=True)
    planned = {o for o, _ in plan.objects}
    assert dead in planned and live not in planned
    plan.execute()
    assert store.has(live) and not store.has(dead)
    assert not [n for n in os.listdir(store.root / "pins") if not n.startswith(_owner())]


def _owner() -> str:
    from lensvault.store.owner import current

    return current()


def test_gc_needs_force_below_the_safe_grace_period(sqlite_vault):
    from lensvault.errors import UsageError

    with pytest.raises(UsageError) as ei:
        sqlite_vault.gc(grace_seconds=60)
    assert "--force" in ei.value.fix and ei.value.where == "--grace 60"
    r = lv("--vault", sqlite_vault.root, "gc", "--grace", "0")
    assert r.returncode == 2 and "--force" in r.stderr and "Traceback" not in r.stderr
    assert lv("--vault", sqlite_vault.root, "gc", "--grace", "0", "--force").returncode == 0
    assert lv("--vault", sqlite_vault.root, "gc", "--grace", "600").returncode == 0


def test_a_staging_record_cut_short_by_a_kill_is_removed(sqlite_vault):
    # kill -9 while the checkout wrote its staging record: an empty or partial record names no
    # folder (none was made yet), and once its writer is gone it is a leftover of its own.
    staging = sqlite_vault.dir / "staging"
    staging.mkdir(exist_ok=True)
    cut = staging / "deadbeef.1.1-.lensvault-checkout-1-abcd1234.json"
    cut.write_text('{"pa')
    assert sqlite_vault.gc().leftovers == []  # another host's writer: the grace period decides
    hour_ago = time.time() - 7200
    os.utime(cut, (hour_ago, hour_ago))
    plan = sqlite_vault.gc()
    assert [(x.kind, x.path) for x in plan.leftovers] == [("staging record", str(cut))]
    plan.execute()
    assert not cut.exists()
