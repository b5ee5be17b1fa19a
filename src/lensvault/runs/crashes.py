"""Runs whose owner is gone: ended as ``crashed`` (found) or ``abandoned`` (by hand).

``lensvault run`` killed with SIGKILL, a machine that lost power, or a script that called
``start_run`` and was killed, leave their run ``running`` and its model version reserved:
nothing is left to finish them. Every command that touches runs (``runs list``/``show``,
``run``, ``preflight``, ``model register``) first looks for running runs owned by this host
whose owner process is dead (pid gone, or reused by a later process: see owner.py) and ends
them as ``crashed``, in one transaction that also releases the model version and appends a
``run.crash`` event. The log the run had written so far is kept as its log. Runs owned by
another host are left alone: only that host can tell whether they still run.

``lensvault runs abandon RUN`` ends a run by hand as ``abandoned`` (event ``run.abandon``).
It refuses a run whose owner is alive on this host, or cannot be checked from here, unless
``--force``. Either way the row moves once, from ``running`` to its final state — the
transition the runs table's trigger allows — and is frozen from then on.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from lensvault.errors import UsageError
from lensvault.runs.owner import ALIVE, DEAD, UNKNOWN, Owner, owner_state, this_host

if TYPE_CHECKING:
    from lensvault.vault import Vault

__all__ = ["EndedRun", "abandon_run", "dead_owner_runs", "leftover_work_dirs", "reap_dead_runs"]


@dataclass(frozen=True)
class EndedRun:
    run_id: str
    status: str                 # crashed | abandoned
    reason: str
    owner: dict | None          # {host, pid} as recorded
    owner_state: str            # alive | dead | unknown, when it was ended
    released: str | None        # NAME@X.Y.Z whose reservation was given back
    log_oid: str | None         # the output recorded so far, when this host still had it

    def to_dict(self) -> dict:
        return asdict(self)


def _owner(row) -> Owner:
    return Owner(row.owner_host, row.owner_pid, row.owner_started)


def dead_owner_runs(conn) -> list:
    """The open runs owned by this host whose owner process is dead (rows of ``open_on_host``),
    read through ``conn``: a reader that finds none has nothing to reap and reads on."""
    from lensvault.catalog.repos.runs import RunRepo
    from lensvault.runs.lifecycle import OPEN_STATES

    return [row for row in RunRepo(conn).open_on_host(this_host(), OPEN_STATES) if owner_state(_owner(row)) == DEAD]


def reap_dead_runs(vault: Vault) -> list[EndedRun]:
    """End every running run whose owner process on this host is dead; return what was ended."""
    with vault.catalog.read() as conn:
        rows = dead_owner_runs(conn)
    ended = []
    for row in rows:
        owner = _owner(row)
        done = _end(vault, row.run_id, "crashed", DEAD,
                    f"its owner process ({owner.describe()}) ended without finishing it")
        if done is not None:
            ended.append(done)
    return ended


def leftover_work_dirs(vault: Vault, grace_seconds: float) -> list:
    """Data folders and partial logs (``.lensvault/tmp/run-ID``) that no live process will use:
    of runs that ended, or whose owner on this host is dead (``reap_dead_runs`` first keeps the
    partial log as the run's log), or — unknown to the catalog — older than the grace period."""
    from lensvault.catalog.repos.runs import RunRepo
    from lensvault.runs.lifecycle import OPEN_STATES
    from lensvault.runs.runfiles import run_work_dir
    from lensvault.store.leftovers import scan_files

    root = run_work_dir(vault, "x").parent
    try:
        ids = [e.name[4:] for e in os.scandir(root) if e.name.startswith("run-")]
    except OSError:
        return []
    if not ids:
        return []
    with vault.catalog.read() as conn:
        repo = RunRepo(conn)
        rows = [r for r in map(repo.get, ids) if r is not None]
    over = {r.run_id for r in rows if r.status not in OPEN_STATES or owner_state(_owner(r)) == DEAD}
    known = {r.run_id for r in rows}
    kind = "run data folder"
    return (scan_files(root, kind, -1, match=lambda n: n.startswith("run-") and n[4:] in over)
            + scan_files(root, kind, grace_seconds, match=lambda n: n.startswith("run-") and n[4:] not in known))


def abandon_run(vault: Vault, ref: str, *, reason: str | None = None, force: bool = False) -> EndedRun:
    """End a running run by hand as ``abandoned`` and release its model version."""
    from lensvault.catalog.repos.runs import RunRepo
    from lensvault.runs.lifecycle import OPEN_STATES
    from lensvault.runs.resolve import resolve_run_id

    with vault.catalog.read() as conn:
        run_id = resolve_run_id(conn, ref)
        row = RunRepo(conn).one(run_id)
    if row.status not in OPEN_STATES:
        raise UsageError(f"run {run_id} is not running: it ended as {row.status}", where=run_id,
                         fix=f"nothing to abandon; see `lensvault runs show {run_id}`")
    owner = _owner(row)
    state = owner_state(owner)
    if state == ALIVE and not force:
        raise UsageError(f"run {run_id} is still running: its owner, {owner.describe()}, is alive", where=run_id,
                         fix=f"stop it (Ctrl-C in its terminal, or `kill {owner.pid}`), or pass --force to "
                             "abandon it while it runs (what it records afterwards is not kept)")
    if state == UNKNOWN and not force:
        where_ = (f"its owner is {owner.describe()}, not this host ({this_host()})" if owner.pid is not None
                  else "it was started before LensVault recorded run owners")
        raise UsageError(f"run {run_id} cannot be checked from here: {where_}", where=run_id,
                         fix="make sure it no longer runs, then pass --force")
    why = f"abandoned by {vault.actor}" + (f": {reason}" if reason else "")
    why += {ALIVE: f" (its owner, {owner.describe()}, was still alive)",
            DEAD: f" (its owner, {owner.describe()}, had ended)",
            UNKNOWN: " (its owner could not be checked)"}[state]
    done = _end(vault, run_id, "abandoned", state, why)
    if done is None:
        raise UsageError(f"run {run_id} ended meanwhile", where=run_id, fix=f"see `lensvault runs show {run_id}`")
    return done


def _end(vault: Vault, run_id: str, status: str, state: str, reason: str) -> EndedRun | None:
    """Move one running run to ``status``; None if it ended meanwhile (another command won)."""
    from lensvault.catalog.catalog import utcnow
    from lensvault.catalog.repos.runs import RunRepo
    from lensvault.runs.lifecycle import OPEN_STATES
    from lensvault.runs.runfiles import run_work_dir, store_log

    work = run_work_dir(vault, run_id)
    log_oid = store_log(vault, work / "log.txt")
    with vault.catalog.begin() as conn:
        runs = RunRepo(conn)
        row = runs.one(run_id)
        values = {"status": status, "ended_at": utcnow(), "end_reason": reason}
        if log_oid and not row.log_oid:
            values["log_oid"] = log_oid
        if not runs.end(run_id, values, open_states=OPEN_STATES):
            return None
        held = runs.reservation_of(run_id)
        runs.release(run_id)
        if "log_oid" in values and log_oid:  # (set above only for one)
            vault.catalog.add_object_refs(conn, "run", run_id, [log_oid])
        released = f"{held.name}@{held.version}" if held else None
        owner = {"host": row.owner_host, "pid": row.owner_pid} if row.owner_pid is not None else None
        vault.catalog.append_event(conn, "run.crash" if status == "crashed" else "run.abandon", "run", run_id,
                                   before={"status": "running"},
                                   after={"status": status, "reason": reason, "owner": owner,
                                          "owner_state": state, "released": released})
        from lensvault import ledger  # the status change, in the store too (catalog rebuild replays it)

        ledger.record(vault, conn, "run.finish", {"run_id": run_id, "values": values, "release_reservation": True},
                      objects=[values.get("log_oid")])
    if state == DEAD:
        # Its data folder and partial log; a live owner still uses them.
        shutil.rmtree(work, ignore_errors=True)
    return EndedRun(run_id, status, reason, owner, state, released, values.get("log_oid"))
