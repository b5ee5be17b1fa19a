"""A run's life in the catalog: created (with its model reservation), then finished once.

A run row is created as ``running`` in the same transaction that reserves its model version
and appends the ``run.start`` event, so two runs racing for one version cannot both start.
It moves once to ``succeeded``, ``failed`` or ``interrupted``; after that a trigger freezes it.
A failed or interrupted run gives its model version back. The row names its owner process
(host, pid, start time); a run whose owner died without finishing it is ended as
``crashed`` by the next command that looks (lensvault/runs/crashes.py).

What a run records while it runs: lensvault/runs/recorder.py; reading runs back:
lensvault/runs/read.py.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lensvault import ledger
from lensvault.errors import PreflightFailed, UsageError

if TYPE_CHECKING:
    from lensvault.vault import Vault

__all__ = ["FINAL_STATES", "OPEN_STATES", "ORPHAN_STATES", "STATES", "create_run", "finish_run", "new_run_id",
           "run_status", "set_environment"]

FINAL_STATES = ("succeeded", "failed", "interrupted")
# Ended by someone other than the owner: the owner died (crashed) or a person gave up on it (abandoned).
ORPHAN_STATES = ("crashed", "abandoned")
OPEN_STATES = ("reserved", "running")
STATES = ("running", *FINAL_STATES, *ORPHAN_STATES)


def new_run_id(now: datetime | None = None) -> str:
    """Time-sortable and unique: ``2026-11-26T10-30-05Z-3f9a`` (UTC, then 4 random hex digits)."""
    now = now or datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H-%M-%SZ") + "-" + secrets.token_hex(2)


def create_run(vault: Vault, report, *, kind: str = "run", command: list[str] | None = None, cwd: str | None = None,
               notes: str | None = None, reproduces: str | None = None) -> str:
    """Insert the run as ``running`` and reserve its model version; return the run id."""
    from lensvault.catalog.catalog import utcnow
    from lensvault.catalog.repos import Conflict, RunRepo
    from lensvault.runs.owner import this_process

    owner = this_process()
    for _attempt in range(5):
        run_id = new_run_id()
        row = {"run_id": run_id, "status": "running", "kind": kind, "code_commit": report.code_commit,
               "clean": bool(report.clean), "repo_root": report.repo_root, "dataset": report.dataset,
               "dataset_snapshot": report.dataset_snapshot, "config_id": report.config_id,
               "seeds": json.dumps(report.seeds, sort_keys=True), "command": json.dumps(command) if command else None,
               "cwd": cwd, "model_name": report.model[0] if report.model else None,
               "model_version": report.model[1] if report.model else None, "started_at": utcnow(),
               "created_by": vault.actor, "notes": notes, "reproduces": reproduces,
               "owner_host": owner.host, "owner_pid": owner.pid, "owner_started": owner.started}
        try:
            with vault.catalog.begin() as conn:
                runs = RunRepo(conn)
                if runs.exists(run_id):
                    continue
                runs.add(row)
                reservation = None
                if report.model:
                    reservation = {"name": report.model[0], "version": report.model[1], "run_id": run_id,
                                   "created_at": row["started_at"]}
                    runs.reserve(reservation)
                vault.catalog.append_event(conn, "run.start", "run", run_id, after={
                    k: row[k] for k in ("dataset", "config_id", "code_commit", "clean", "model_name", "model_version")})
                ledger.record(vault, conn, "run.start", {"row": row, "reservation": reservation})
            return run_id
        except Conflict:
            if not report.model:
                raise
            raise PreflightFailed("preflight failed: the model version was taken meanwhile", failures=[{
                "check": "model_version", "what": f"model {report.model[0]}@{report.model[1]} was reserved by "
                "another run that started at the same time", "fix": "pick another version"}]) from None
    raise UsageError("could not allocate a run id", fix="try again")  # pragma: no cover - 5 collisions in one second


def finish_run(vault: Vault, run_id: str, status: str, *, exit_code: int | None = None, log_oid: str | None = None,
               environment_oid: str | None = None) -> str:
    """End a running run as ``status``; return the status it ends with.

    A run that was abandoned meanwhile (``lensvault runs abandon --force`` while its owner
    still ran) keeps that status: the row is frozen, and the owner learns it from the result.
    """
    from lensvault.catalog.catalog import utcnow
    from lensvault.catalog.repos.runs import RunRepo

    assert status in FINAL_STATES, status
    # (The store's commit check: the objects it refers to are still there, gc held off meanwhile.)
    with vault.store.committing([o for o in (log_oid, environment_oid) if o]), vault.catalog.begin() as conn:
        runs = RunRepo(conn)
        values = {"status": status, "exit_code": exit_code, "ended_at": utcnow()}
        if log_oid:
            values["log_oid"] = log_oid
        if environment_oid:
            values["environment_oid"] = environment_oid
        if not runs.end(run_id, values, open_states=OPEN_STATES):
            now = runs.status(run_id)
            if now in ORPHAN_STATES:
                return now
            raise UsageError(f"run {run_id} is already finished", where=run_id)
        if status != "succeeded":
            runs.release(run_id)
        vault.catalog.add_object_refs(conn, "run", run_id, [o for o in (log_oid, environment_oid) if o])
        vault.catalog.append_event(conn, "run.finish", "run", run_id, after={"status": status, "exit_code": exit_code})
        # A separate record from run.start: a run's status changes once, after it started.
        ledger.record(vault, conn, "run.finish", {"run_id": run_id, "values": values,
                                                  "release_reservation": status != "succeeded"},
                      objects=[log_oid, environment_oid])
    return status


def run_status(vault: Vault, run_id: str) -> str | None:
    from lensvault.catalog.repos.runs import RunRepo

    with vault.catalog.read() as conn:
        return RunRepo(conn).status(run_id)


def set_environment(vault: Vault, run_id: str, environment: dict) -> str:
    from lensvault.catalog.repos.runs import RunRepo

    oid = vault.store.put_bytes(json.dumps(environment, sort_keys=True, default=str).encode())
    with vault.store.committing([oid]), vault.catalog.begin() as conn:
        RunRepo(conn).set_environment(run_id, oid)
        vault.catalog.add_object_refs(conn, "run", run_id, [oid])
        ledger.record(vault, conn, "run.environment", {"run_id": run_id, "environment_oid": oid}, objects=[oid])
    return oid
