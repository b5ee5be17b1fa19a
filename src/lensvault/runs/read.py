"""Reading runs back: the list (with latest metrics), one run with everything it recorded,
and its log. Each first ends the runs whose owner died (lensvault/runs/crashes.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from lensvault.errors import NotFound

if TYPE_CHECKING:
    from lensvault.vault import Vault

__all__ = ["get_run", "list_runs", "reap_dead_runs", "run_log"]


def reap_dead_runs(vault: Vault) -> list:
    from lensvault.runs.crashes import reap_dead_runs as reap

    return reap(vault)


@contextmanager
def _read_after_reaping(vault: Vault) -> Iterator[Any]:
    """A catalog read in which no run of this host whose owner died is still open. The check is
    the read's first statement (one transaction per request, not one for the check and one for
    the read); when it finds some, they are ended first and the read starts again."""
    from lensvault.runs.crashes import dead_owner_runs

    with vault.catalog.query() as conn:
        if not dead_owner_runs(conn):
            yield conn
            return
    reap_dead_runs(vault)
    with vault.catalog.query() as conn:
        yield conn


def list_runs(vault: Vault, *, dataset: str | None = None, status: str | None = None,
              limit: int | None = None) -> tuple[list[dict], int]:
    """Runs, newest first, each with its latest overall metrics ({key: value}), and how many runs
    match (more than the list when ``limit`` cut it); seeds, command and environment are in
    :func:`get_run`.

    Built from plain tuples and the ``run_latest_metrics`` table: listing 10,000 runs must
    take well under 200 ms, and per-row attribute access alone would cost more than that.
    """
    from lensvault.catalog.repos.runs import RunRepo

    with _read_after_reaping(vault) as conn:
        runs = RunRepo(conn)
        rows = runs.listing(dataset=dataset, status=status, limit=limit)
        total = runs.count(dataset=dataset, status=status) if limit and len(rows) == limit else len(rows)
        latest: dict[str, dict] = {}
        values = runs.listing_latest_metrics(dataset=dataset, status=status, limit=limit) \
            if (limit or dataset or status) else runs.latest_metrics_of(None)
        for run_id, key, value in values:
            d = latest.get(run_id)
            if d is None:
                d = latest[run_id] = {}
            d[key] = value
    out = []
    for (run_id, st, kind, commit, clean, ds, cfg, mname, mver, code, started, ended, by) in rows:
        out.append({"run_id": run_id, "status": st, "kind": kind, "code_commit": commit, "clean": bool(clean),
                    "dirty": not clean, "dataset": ds, "config": cfg,
                    "model": f"{mname}@{mver}" if mname else None, "exit_code": code, "started_at": started,
                    "ended_at": ended, "created_by": by, "metrics": latest.get(run_id, {})})
    return out, total


def _run_dict(row, *, latest: dict | None = None) -> dict:
    return {
        "run_id": row.run_id, "status": row.status, "kind": row.kind, "code_commit": row.code_commit,
        "clean": bool(row.clean), "dirty": not bool(row.clean), "dataset": row.dataset,
        "dataset_snapshot": row.dataset_snapshot, "config": row.config_id,
        "seeds": json.loads(row.seeds) if row.seeds else {},
        "command": json.loads(row.command) if row.command else None, "cwd": row.cwd,
        "model": f"{row.model_name}@{row.model_version}" if row.model_name else None,
        "exit_code": row.exit_code, "started_at": row.started_at, "ended_at": row.ended_at,
        "created_by": row.created_by, "log_oid": row.log_oid, "environment_oid": row.environment_oid,
        "reproduces": getattr(row, "reproduces", None),
        "owner": {"host": row.owner_host, "pid": row.owner_pid} if row.owner_pid is not None else None,
        "end_reason": row.end_reason,
        **({"metrics": latest} if latest is not None else {}),
    }


def get_run(vault: Vault, ref: str, *, points: bool = False) -> dict:
    """Everything recorded about a run: the row, params, metrics, artifacts, environment, evaluations."""
    from lensvault.catalog.repos import EvaluationRepo, RunRepo
    from lensvault.runs.resolve import resolve_run_id

    with _read_after_reaping(vault) as conn:
        runs = RunRepo(conn)
        run_id = resolve_run_id(conn, ref)
        row = runs.one(run_id)
        latest = {r.key: r.value for r in runs.latest_metrics(run_id)}
        # Per class and per slice: the last value logged for each (key, class, slice).
        breakdown: dict[str, dict] = {"per_class": {}, "per_slice": {}}
        mrows = runs.metric_point_tuples(run_id)  # (key, value, step, class, slice, at)
        for key, value, _step, cls, sl, _at in mrows:
            if cls is not None:
                breakdown["per_class"].setdefault(cls, {})[key if sl is None else f"{key}[{sl}]"] = value
            elif sl is not None:
                breakdown["per_slice"].setdefault(sl, {})[key] = value
        params = {r.key: json.loads(r.value) for r in runs.params(run_id)}
        artifacts = [{"path": a.path, "size": a.size, "sha256": a.sha256} for a in runs.artifacts(run_id)]
        evals = [{"eval_id": e.eval_id, "dataset": e.dataset, "split": e.split, "created_at": e.created_at,
                  "overall": json.loads(e.metrics).get("overall")} for e in EvaluationRepo(conn).of_run(run_id)]
    out = _run_dict(row, latest=latest)
    out.update({"metrics_per_class": breakdown["per_class"], "metrics_per_slice": breakdown["per_slice"],
                "metric_points": len(mrows), "params": params, "artifacts": artifacts, "evaluations": evals})
    if points:
        out["points"] = [{"key": key, "value": value, "step": step, "class": cls, "slice": sl, "at": at}
                         for key, value, step, cls, sl, at in mrows]
    out["environment"] = json.loads(vault.store.read_bytes(row.environment_oid)) if row.environment_oid else None
    return out


def run_log(vault: Vault, ref: str) -> tuple[str, bytes]:
    """(run id, the output the run recorded)."""
    from lensvault.catalog.repos.runs import RunRepo
    from lensvault.runs.resolve import resolve_run_id

    with _read_after_reaping(vault) as conn:  # a crashed run's partial log is kept as its log
        run_id = resolve_run_id(conn, ref)
        row = RunRepo(conn).one(run_id)
    if not row.log_oid:
        why = ("wait until it ends: its output is shown where it runs and recorded when it ends"
               if row.status == "running" else
               "logs are recorded by `lensvault run`; standalone runs have none")
        raise NotFound(f"run {run_id} has no recorded log", where=run_id, fix=why)
    return run_id, vault.store.read_bytes(row.log_oid)
