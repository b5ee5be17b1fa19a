"""A run whose owner is gone: `lensvault run` killed with SIGKILL is found dead by the next
command that touches runs, marked crashed, and its model version released; `runs abandon`
does it by hand. Real subprocesses, real signals, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.runs.conftest import GIT_ENV

RUN = ["run", "--dataset", "shapes@1.0.0", "--config", "C-01"]

# Prints its pid, then waits for a "stop" file in its output folder (or to be killed).
SLEEPER = """\
import os, sys, time, pathlib
print("ready", os.getpid(), os.getppid(), flush=True)
stop = pathlib.Path(os.environ["LENSVAULT_OUTPUT_DIR"]) / "stop"
while not stop.exists():
    time.sleep(0.05)
print("stopping", flush=True)
"""


def start_run(project, *extra) -> tuple[subprocess.Popen, int]:
    """`lensvault run … -- python sleeper.py` in the background; returns it once the child runs."""
    proc = subprocess.Popen([sys.executable, "-m", "lensvault.cli.main", *RUN, *extra, "--", sys.executable, "sleeper.py"],
                            cwd=project.root, env={**os.environ, **GIT_ENV, "LENSVAULT_DIR": str(project.root)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("ready"):
            return proc, int(line.split()[1])
    proc.wait()
    raise AssertionError(f"the run did not start: {proc.stderr.read()}")


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)  # the training child runs in its own session
    except ProcessLookupError:
        pass


@pytest.fixture
def sleeper_project(project):
    (project.root / "sleeper.py").write_text(SLEEPER)
    project.commit_all("sleeper")
    return project


def lv_json(project, *args) -> dict | list:
    r = project.lensvault(*args, "--json")
    assert r.returncode == 0, r.stderr + r.stdout
    return json.loads(r.stdout)


def only_running_run(project) -> str:
    rows = lv_json(project, "runs", "list", "--status", "running")
    assert len(rows) == 1, rows
    return rows[0]["run_id"]


def test_killed_run_is_marked_crashed_and_its_version_released(sleeper_project):
    p = sleeper_project
    proc, child = start_run(p, "--model", "det", "--version", "1.0.0")
    try:
        run_id = only_running_run(p)  # alive: listing it does not end it
        work = p.root / ".lensvault" / "tmp" / f"run-{run_id}"
        assert work.is_dir()
        proc.send_signal(signal.SIGKILL)
        # Not collected: the killed owner stays a zombie until its parent (this test) reaps it.
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        pre = p.lensvault("preflight", "--dataset", "shapes@1.0.0", "--config", "C-01", "--model", "det",
                          "--version", "1.0.0")
        assert pre.returncode == 0, pre.stderr  # the preflight found the owner dead: the version is free
        proc.wait()
    finally:
        proc.kill()
        proc.wait()
        kill_group(child)
    s = lv_json(p, "runs", "show", run_id)
    assert s["status"] == "crashed" and s["ended_at"]
    assert f"pid {s['owner']['pid']}" in s["end_reason"] and s["owner"]["pid"] == proc.pid
    assert "ready" in p.lensvault("runs", "log", run_id).stdout  # the output so far is kept
    assert not work.exists()  # its data folder and partial log are cleaned up
    text = p.lensvault("runs", "show", run_id).stdout
    assert "status=crashed" in text and s["end_reason"] in text
    crash = [e for e in lv_json(p, "events", "--action", "run.crash") if e["subject"] == run_id]
    assert len(crash) == 1 and crash[0]["after"]["released"] == "det@1.0.0"
    assert crash[0]["after"]["owner_state"] == "dead"
    # ended once: nothing reaps it again, and the frozen row refuses a second end
    assert lv_json(p, "events", "--action", "run.crash") == crash
    r = p.lensvault("runs", "abandon", run_id)
    assert r.returncode == 2 and "not running: it ended as crashed" in r.stderr


def test_a_killed_standalone_run_is_marked_crashed(project):
    """start_run in a script: the script is the owner; killed, its run is found dead too."""
    p = project
    script = p.root / "standalone.py"
    script.write_text(
        "import os, signal, lensvault\n"
        "run = lensvault.start_run(dataset='shapes@1.0.0', config='C-01', model='det', version='3.0.0')\n"
        "lensvault.log_metrics({'loss': 1.0}, step=0)\n"
        "run.flush()\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n")
    p.commit_all("standalone script")
    r = subprocess.run([sys.executable, str(script)], cwd=p.root, env={**os.environ, **GIT_ENV,
                                                                       "LENSVAULT_DIR": str(p.root)})
    assert r.returncode == -signal.SIGKILL
    (row,) = lv_json(p, "runs", "list")
    assert row["status"] == "crashed" and row["model"] == "det@3.0.0" and row["metrics"] == {"loss": 1.0}
    s = lv_json(p, "runs", "show", row["run_id"])
    assert s["kind"] == "standalone" and "model=det@3.0.0 (released)" in p.lensvault("runs", "show", "latest").stdout


def test_register_releases_a_crashed_runs_reservation(sleeper_project):
    p = sleeper_project
    ok = p.lensvault(*RUN, "--", sys.executable, "train.py", env={"STEPS": "2"})
    assert ok.returncode == 0, ok.stderr
    good = lv_json(p, "runs", "show", "latest")["run_id"]
    proc, child = start_run(p, "--model", "det", "--version", "1.0.0")
    try:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        kill_group(child)
    # Nothing touched the runs since the kill: register itself finds the dead owner.
    r = p.lensvault("model", "register", "det", "--run", good, "--weights", f"runs/{good}/model.npz",
                    "--version", "1.0.0")
    assert r.returncode == 0, r.stderr
    crashed = lv_json(p, "runs", "list", "--status", "crashed")
    assert len(crashed) == 1 and crashed[0]["model"] == "det@1.0.0"


def test_a_live_run_is_abandoned_only_with_force(sleeper_project):
    p = sleeper_project
    proc, child = start_run(p, "--model", "det", "--version", "1.0.0")
    try:
        run_id = only_running_run(p)
        r = p.lensvault("runs", "abandon", run_id)
        assert r.returncode == 2 and f"its owner, pid {proc.pid}" in r.stderr and "is alive" in r.stderr
        assert f"kill {proc.pid}" in r.stderr  # the fix names the process to stop
        out = lv_json(p, "runs", "abandon", run_id, "--force", "--reason", "stuck on a dead GPU")
        assert out["status"] == "abandoned" and out["released"] == "det@1.0.0" and out["owner_state"] == "alive"
        assert "stuck on a dead GPU" in out["reason"]
        # the version is free for another run while the abandoned one still runs
        assert p.lensvault("preflight", "--dataset", "shapes@1.0.0", "--config", "C-01", "--model", "det",
                           "--version", "1.0.0").returncode == 0
        (p.root / "runs" / run_id / "stop").write_text("")
        _, err = proc.communicate(timeout=120)
    finally:
        kill_group(child)
        proc.kill()
    # the owner learns its run was abandoned; the row keeps that status
    assert proc.returncode != 0 and f"Run {run_id} abandoned" in err and "Traceback" not in err
    s = lv_json(p, "runs", "show", run_id)
    assert s["status"] == "abandoned" and "stuck on a dead GPU" in s["end_reason"]
    assert s["artifacts"] == [] and s["log_oid"] == out["log_oid"]  # its record ended when it was abandoned


def _running_run(vault, version: str = "9.9.9") -> str:
    from lensvault.runs.lifecycle import create_run
    from lensvault.runs.preflight import PreflightReport

    report = PreflightReport()
    report.dataset, report.config_id, report.clean, report.model = "shapes@1.0.0", "C-01", True, ("det", version)
    return create_run(vault, report, command=["train"])


def _set_owner(vault, run_id, **values) -> None:
    from lensvault.catalog.runs_schema import runs

    with vault.catalog.begin() as conn:
        conn.execute(runs.update().where(runs.c.run_id == run_id).values(**values))


def test_a_reused_pid_is_not_mistaken_for_the_owner(vault):
    from lensvault.runs.crashes import reap_dead_runs
    from lensvault.runs.owner import this_host

    run_id = _running_run(vault)  # owned by this test process, which is alive
    assert reap_dead_runs(vault) == []
    assert vault.get_run(run_id)["status"] == "running"
    # The same pid, but started at another time: a later process took the dead owner's pid.
    _set_owner(vault, run_id, owner_started="boot/1")
    ended = reap_dead_runs(vault)
    assert [e.run_id for e in ended] == [run_id] and ended[0].released == "det@9.9.9"
    assert vault.get_run(run_id)["status"] == "crashed"
    assert reap_dead_runs(vault) == []

    # A pid that no longer exists at all
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    other = _running_run(vault)
    _set_owner(vault, other, owner_pid=gone.pid)
    assert [r["status"] for r in vault.runs() if r["run_id"] == other] == ["crashed"]

    # Another host: only that host can tell; it is left running, and abandon needs --force.
    remote = _running_run(vault)
    _set_owner(vault, remote, owner_host=this_host() + "-elsewhere", owner_pid=1)
    assert reap_dead_runs(vault) == []
    from lensvault.errors import UsageError
    from lensvault.runs.crashes import abandon_run

    with pytest.raises(UsageError, match="cannot be checked from here"):
        abandon_run(vault, remote)
    done = abandon_run(vault, remote, force=True, reason="host decommissioned")
    assert done.status == "abandoned" and done.owner_state == "unknown" and done.released == "det@9.9.9"


def test_two_reapers_end_a_run_once(vault):
    """Two commands finding the same dead owner at once: one ends the run, one event."""
    from concurrent.futures import ThreadPoolExecutor

    from lensvault.runs.crashes import reap_dead_runs

    run_id = _running_run(vault)
    _set_owner(vault, run_id, owner_started="boot/1")
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: reap_dead_runs(vault), range(4)))
    assert sorted(e.run_id for r in results for e in r) == [run_id]
    events = vault.events(action="run.crash")
    assert [e["subject"] for e in events] == [run_id]


def test_owner_of_this_process_is_alive():
    from lensvault.runs.owner import ALIVE, DEAD, Owner, owner_state, this_process

    me = this_process()
    assert me.pid == os.getpid() and me.started
    assert owner_state(me) == ALIVE
    assert owner_state(Owner(me.host, me.pid, me.started + "x")) == DEAD
    if Path("/proc/self/stat").exists():
        # A command name with spaces and ')' does not confuse the /proc parser.
        weird = Path(os.environ.get("TMPDIR", "/tmp")) / f"a b) c{os.getpid()}"
        weird.symlink_to(sys.executable)
        try:
            proc = subprocess.Popen([str(weird), "-c", "import time; time.sleep(30)"])
            try:
                from lensvault.runs.owner import process_started

                assert process_started(proc.pid) and owner_state(Owner(me.host, proc.pid, process_started(proc.pid))) == ALIVE
            finally:
                proc.kill()
                proc.wait()
        finally:
            weird.unlink()


def _gone(pid: int) -> bool:
    """Dead (or a zombie its new parent has not collected yet)."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        return True
    return data[data.rfind(b")") + 2:][:1] in (b"Z", b"X")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="PR_SET_PDEATHSIG and /proc are Linux's")
@pytest.mark.parametrize("killed", ["the lensvault process", "its process group"])
@pytest.mark.parametrize("training", ["python", "a shell script running python"])
def test_a_killed_run_takes_its_training_with_it(sleeper_project, killed, training):
    """kill -9 of `lensvault run` (alone, as `kill -9 PID` does, or with its whole process group,
    as a closed terminal or a machine's OOM killer may do): the training it started, and what
    that started in turn, must not go on running unrecorded."""
    import time

    p = sleeper_project
    cmd = [sys.executable, "sleeper.py"]
    if training != "python":
        cmd = ["sh", "-c", f"'{sys.executable}' sleeper.py; echo after"]  # python is the shell's child
    proc = subprocess.Popen([sys.executable, "-m", "lensvault.cli.main", *RUN, "--", *cmd], cwd=p.root,
                            env={**os.environ, **GIT_ENV, "LENSVAULT_DIR": str(p.root)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    pids = []
    try:
        for line in proc.stdout:
            if line.startswith("ready"):
                pids = [int(x) for x in line.split()[1:3]]  # the python process, and its parent
                break
        assert pids, proc.communicate()
        if training != "python":
            assert pids[1] != proc.pid  # the shell stands between
        (os.killpg if killed != "the lensvault process" else os.kill)(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 60
        while not all(_gone(x) for x in pids):
            assert time.monotonic() < deadline, f"still running after the kill: {[x for x in pids if not _gone(x)]}"
            time.sleep(0.02)
    finally:
        for x in pids:
            kill_group(x)
    (run,) = lv_json(p, "runs", "list")
    assert run["status"] == "crashed"


def test_gc_removes_the_data_folder_of_a_killed_run_and_keeps_its_log(sleeper_project):
    """A run killed with SIGKILL leaves its data folder (a checkout of the dataset) and its partial
    log under .lensvault/tmp/: gc lists them and removes them, once the run is ended as crashed with
    that log; a live run's folder is never touched."""
    p = sleeper_project
    live, live_child = start_run(p)
    dead, dead_child = start_run(p)
    try:
        runs = {r["run_id"] for r in lv_json(p, "runs", "list", "--status", "running")}
        os.kill(dead.pid, signal.SIGKILL)
        dead.wait()
        work = {r: p.root / ".lensvault" / "tmp" / f"run-{r}" for r in runs}
        assert all(w.is_dir() for w in work.values())
        # gc before any command that touches runs: it finds the dead owner itself.
        plan = lv_json(p, "gc")["plan"]
        listed = [x["path"] for x in plan["leftovers"] if x["kind"] == "run data folder"]
        assert len(listed) == 1, plan
        (dead_id,) = [r for r in runs if str(work[r]) == listed[0]]
        r = p.lensvault("gc", "--yes")
        assert r.returncode == 0 and "run data folder" in r.stdout, r.stdout + r.stderr
        assert not work[dead_id].exists() and all(w.is_dir() for r, w in work.items() if r != dead_id)
        s = lv_json(p, "runs", "show", dead_id)
        assert s["status"] == "crashed" and s["log_oid"]
        assert "ready" in p.lensvault("runs", "log", dead_id).stdout
    finally:
        for proc, child in ((live, live_child), (dead, dead_child)):
            proc.kill()
            proc.wait()
            kill_group(child)
