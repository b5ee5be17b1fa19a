"""Run rows in the catalog: create (with the model reservation), record, finish, read, compare.

A run row is created as ``running`` in the same transaction that reserves its model version
and appends the ``run.start`` event, so two runs racing for one version cannot both start.
It moves once to ``succeeded``, ``failed`` or ``interrupted``; after that a trigger freezes it.
A failed or interrupted run gives its model version back. The row names its owner process
(host, pid, start time); a run whose owner died without finishing it is ended as
``crashed`` by the next command that looks (lensvault/runs/crashes.py).
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timezone
from pathlib import Path

from lensvault import ledger
from lensvault.errors import InputError, NotFound, PreflightFailed, UsageError

__all__ = ["RunRecorder", "compare_runs", "create_run", "find_run_id", "finish_run", "get_run", "list_runs",
           "new_run_id", "resolve_run_id", "run_status"]

FINAL_STATES = ("succeeded", "failed", "interrupted")
# Ended by someone other than the owner: the owner died (crashed) or a person gave up on it (abandoned).
ORPHAN_STATES = ("crashed", "abandoned")
OPEN_STATES = ("reserved", "running")
STATES = ("running", *FINAL_STATES, *ORPHAN_STATES)


def new_run_id(now: datetime | None = None) -> str:
    """Time-sortable and unique: ``2026-11-26T10-30-05Z-3f9a`` (UTC, then 4 random hex digits)."""
    now = now or datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H-%M-%SZ") + "-" + secrets.token_hex(2)


def create_run(vault, report, *, kind: str = "run", command: list[str] | None = None, cwd: str | None = None,
               notes: str | None = None, reproduces: str | None = None) -> str:
    """Insert the run as ``running`` and reserve its model version; return the run id."""
    import sqlalchemy as sa

    from lensvault.catalog.catalog import utcnow
    from lensvault.catalog.runs_schema import model_reservations, runs
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
                if conn.execute(sa.select(runs.c.run_id).where(runs.c.run_id == run_id)).first() is not None:
                    continue
                conn.execute(runs.insert().values(**row))
                reservation = None
                if report.model:
                    reservation = dict(name=report.model[0], version=report.model[1], run_id=run_id,
                                       created_at=row["started_at"])
                    conn.execute(model_reservations.insert().values(**reservation))
                vault.catalog.append_event(conn, "run.start", "run", run_id, after={
                    k: row[k] for k in ("dataset", "config_id", "code_commit", "clean", "model_name", "model_version")})
                ledger.record(vault, conn, "run.start", {"row": row, "reservation": reservation})
            return run_id
        except sa.exc.IntegrityError:
            if report.model:
                raise PreflightFailed("preflight failed: the model version was taken meanwhile", failures=[{
                    "check": "model_version", "what": f"model {report.model[0]}@{report.model[1]} was reserved by "
                    "another run that started at the same time", "fix": "pick another version"}]) from None
            raise
    raise UsageError("could not allocate a run id", fix="try again")  # pragma: no cover - 5 collisions in one second


def finish_run(vault, run_id: str, status: str, *, exit_code: int | None = None, log_oid: str | None = None,
               environment_oid: str | None = None) -> str:
    """End a running run as ``status``; return the status it ends with.

    A run that was abandoned meanwhile (``lensvault runs abandon --force`` while its owner
    still ran) keeps that status: the row is frozen, and the owner learns it from the result.
    """
    import sqlalchemy as sa

    from lensvault.catalog.catalog import utcnow
    from lensvault.catalog.runs_schema import model_reservations, runs

    assert status in FINAL_STATES, status
    # (The store's commit check: the objects it refers to are still there, gc held off meanwhile.)
    with vault.store.committing([o for o in (log_oid, environment_oid) if o]), vault.catalog.begin() as conn:
        values = {"status": status, "exit_code": exit_code, "ended_at": utcnow()}
        if log_oid:
            values["log_oid"] = log_oid
        if environment_oid:
            values["environment_oid"] = environment_oid
        updated = conn.execute(runs.update().where(runs.c.run_id == run_id, runs.c.status.in_(OPEN_STATES))
                               .values(**values)).rowcount
        if not updated:
            now = conn.execute(sa.select(runs.c.status).where(runs.c.run_id == run_id)).scalar()
            if now in ORPHAN_STATES:
                return now
            raise UsageError(f"run {run_id} is already finished", where=run_id)
        if status != "succeeded":
            conn.execute(model_reservations.delete().where(model_reservations.c.run_id == run_id))
        vault.catalog.add_object_refs(conn, "run", run_id, [o for o in (log_oid, environment_oid) if o])
        vault.catalog.append_event(conn, "run.finish", "run", run_id, after={"status": status, "exit_code": exit_code})
        # A separate record from run.start: a run's status changes once, after it started.
        ledger.record(vault, conn, "run.finish", {"run_id": run_id, "values": values,
                                                  "release_reservation": status != "succeeded"},
                      objects=[log_oid, environment_oid])
    return status


def run_status(vault, run_id: str) -> str | None:
    import sqlalchemy as sa

    from lensvault.catalog.runs_schema import runs

    with vault.catalog.read() as conn:
        return conn.execute(sa.select(runs.c.status).where(runs.c.run_id == run_id)).scalar()


def set_environment(vault, run_id: str, environment: dict) -> str:
    from lensvault.catalog.runs_schema import runs

    oid = vault.store.put_bytes(json.dumps(environment, sort_keys=True, default=str).encode())
    with vault.store.committing([oid]), vault.catalog.begin() as conn:
        conn.execute(runs.update().where(runs.c.run_id == run_id).values(environment_oid=oid))
        vault.catalog.add_object_refs(conn, "run", run_id, [oid])
        ledger.record(vault, conn, "run.environment", {"run_id": run_id, "environment_oid": oid}, objects=[oid])
    return oid


# --------------------------------------------------------------------------- recording


class RunRecorder:
    """Buffered writes of one run's params, metrics and artifacts.

    Metric points are kept in memory and written in batches (one executemany per flush),
    every ``flush_every`` points or ``flush_seconds`` seconds, and on :meth:`close`. A flush
    is one short write transaction, so several runs logging at once queue briefly on the
    catalog's write lock instead of losing points.
    """

    def __init__(self, vault, run_id: str, *, output_dir: Path | None = None, flush_every: int = 20_000,
                 flush_seconds: float = 5.0):
        import time

        self.vault = vault
        self.run_id = run_id
        self.output_dir = output_dir
        self.flush_every = flush_every
        self.flush_seconds = flush_seconds
        self._points: list[tuple] = []
        self._clock = time.monotonic
        self._last_flush = self._clock()

    # -- params
    def log_params(self, params: dict) -> None:
        import sqlalchemy as sa

        from lensvault.catalog.runs_schema import run_params
        from lensvault.configs import flatten

        flat = flatten(params) if isinstance(params, dict) else None
        if flat is None:
            raise UsageError("log_params takes a dict", where=type(params).__name__)
        rows = [{"run_id": self.run_id, "key": str(k), "value": json.dumps(v, sort_keys=True, default=str)}
                for k, v in flat.items()]
        if not rows:
            return
        with self.vault.catalog.begin() as conn:
            have = {r.key: r.value for r in conn.execute(
                sa.select(run_params.c.key, run_params.c.value).where(run_params.c.run_id == self.run_id))}
            clashes = [r["key"] for r in rows if r["key"] in have and have[r["key"]] != r["value"]]
            if clashes:
                raise UsageError(f"params are write-once: {', '.join(clashes)} already logged with another value",
                                 where=self.run_id, fix="log a changed value under a new key")
            new = [r for r in rows if r["key"] not in have]
            if new:
                conn.execute(run_params.insert(), new)
                ledger.record(self.vault, conn, "run.params", {"run_id": self.run_id, "params": new})

    # -- metrics
    def log_metrics(self, metrics: dict, step: int | None = None, *, class_name: str | None = None,
                    slice: str | None = None, at: str | None = None) -> None:
        import math

        if at is None:
            at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        rid, pts = self.run_id, self._points
        for key, value in metrics.items():
            if value is None:
                v = None
            else:
                try:
                    v = float(value)
                except (TypeError, ValueError):
                    raise InputError(f"metric {key!r} is not a number: {value!r}", where=str(key),
                                     fix="log numbers; put text in params") from None
                if not math.isfinite(v):
                    v = None
            pts.append((rid, str(key), v, step, class_name, slice, at))
        if len(pts) >= self.flush_every or self._clock() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        pts, self._points = self._points, []
        self._last_flush = self._clock()
        if not pts:
            return
        write_metric_points(self.vault, pts)

    # -- artifacts
    def log_artifact(self, path, name: str | None = None) -> dict:
        p = Path(path).absolute()
        if not p.is_file():
            raise NotFound("artifact file not found", where=str(path), fix="log a file that exists")
        if name is None:
            name = p.name
            if self.output_dir is not None:
                try:
                    name = p.relative_to(Path(self.output_dir).absolute()).as_posix()
                except ValueError:
                    pass
        return record_artifacts(self.vault, self.run_id, [(name, p)])[0]

    def close(self) -> None:
        self.flush()


def write_metric_points(vault, pts: list[tuple]) -> None:
    """Insert points (run_id, key, value, step, class_name, slice, at) and update the latest values."""
    from lensvault.catalog.runs_schema import run_metrics
    from lensvault.catalog.runs_schema import run_latest_metrics

    cols = ("run_id", "key", "value", "step", "class_name", "slice", "at")
    latest: dict[tuple, tuple] = {}
    for p in pts:
        if p[4] is None and p[5] is None:
            latest[(p[0], p[1])] = p
    with vault.catalog.begin() as conn:
        ledger.record(vault, conn, "run.metrics", {"points": [list(p) for p in pts]})
        if conn.dialect.name == "sqlite":
            # The DB-API executemany is several times faster than SQLAlchemy's for 10^5 rows.
            raw = conn.connection.driver_connection
            raw.executemany("INSERT INTO run_metrics (run_id, key, value, step, class_name, slice, at) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?)", pts)
            raw.executemany("INSERT INTO run_latest_metrics (run_id, key, value, step, at) VALUES (?, ?, ?, ?, ?) "
                            "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, step = excluded.step, "
                            "at = excluded.at", [(p[0], p[1], p[2], p[3], p[6]) for p in latest.values()])
            return
        conn.execute(run_metrics.insert(), [dict(zip(cols, p)) for p in pts])
        if latest:
            from sqlalchemy.dialects.postgresql import insert

            stmt = insert(run_latest_metrics)
            stmt = stmt.on_conflict_do_update(index_elements=["run_id", "key"], set_={
                "value": stmt.excluded.value, "step": stmt.excluded.step, "at": stmt.excluded.at})
            conn.execute(stmt, [{"run_id": p[0], "key": p[1], "value": p[2], "step": p[3], "at": p[6]}
                                for p in latest.values()])


def record_artifacts(vault, run_id: str, items: list[tuple[str, Path]], *, skip_existing: bool = False) -> list[dict]:
    """Store files as the run's artifacts: (name relative to the output dir, path) → rows."""
    import sqlalchemy as sa

    from lensvault.catalog.runs_schema import run_artifacts
    from lensvault.hashing import hash_file
    from lensvault.store.base import LinkMode

    hashed = []
    for name, p in items:
        h = hash_file(p)
        hashed.append((name, p, h.oid, h.size))
    if not hashed:
        return []
    # Copies, not links: the run's output folder stays the user's to change or delete.
    vault.store.put_files([(str(p), oid) for _, p, oid, _ in hashed], LinkMode.COPY)
    rows = [{"run_id": run_id, "path": name, "sha256": oid, "size": size} for name, _, oid, size in hashed]
    with vault.store.committing([r["sha256"] for r in rows]), vault.catalog.begin() as conn:
        have = {r.path: r.sha256 for r in conn.execute(
            sa.select(run_artifacts.c.path, run_artifacts.c.sha256).where(run_artifacts.c.run_id == run_id))}
        new = []
        for r in rows:
            if r["path"] in have:
                if skip_existing or have[r["path"]] == r["sha256"]:
                    continue
                raise UsageError(f"artifact {r['path']} was already logged with other content", where=r["path"],
                                 fix="artifacts are write-once: log the new file under another name")
            new.append(r)
        if new:
            conn.execute(run_artifacts.insert(), new)
            vault.catalog.add_object_refs(conn, "run", run_id, [r["sha256"] for r in new])
            ledger.record(vault, conn, "run.artifacts", {"run_id": run_id, "artifacts": new},
                          objects=[r["sha256"] for r in new])
    return rows


def record_output_dir(vault, run_id: str, output_dir: Path) -> list[dict]:
    """Every file in the output folder becomes an artifact (those logged already are kept)."""
    files = sorted(p for p in Path(output_dir).rglob("*") if p.is_file() and not p.is_symlink())
    items = [(p.relative_to(output_dir).as_posix(), p) for p in files if p.name != ".gitignore"]
    return record_artifacts(vault, run_id, items, skip_existing=True)


def record_metrics_file(vault, run_id: str, path: Path) -> int:
    """A ``metrics.json`` the script wrote becomes the run's final metrics (step None).

    Numbers at any depth are flattened to dotted keys, except ``per_class: {class: {metric: v}}``
    and ``per_slice: {slice: {metric: v}}``, which keep their class or slice. Keys the script
    already logged through ``lensvault.log_metrics`` are not logged twice.
    """
    import sqlalchemy as sa

    from lensvault.catalog.runs_schema import run_metrics
    from lensvault.catalog.catalog import utcnow

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0
    if not isinstance(data, dict):
        return 0
    with vault.catalog.read() as conn:
        logged = {(r.key, r.class_name, r.slice) for r in conn.execute(
            sa.select(run_metrics.c.key, run_metrics.c.class_name, run_metrics.c.slice)
            .where(run_metrics.c.run_id == run_id).distinct())}
    at = utcnow()
    pts = []

    def add(key, value, cls=None, sl=None):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (key, cls, sl) in logged:
            return
        import math
        pts.append((run_id, key, float(value) if math.isfinite(value) else None, None, cls, sl, at))

    def walk(d, prefix, cls=None, sl=None):
        for k, v in d.items():
            key = f"{prefix}{k}"
            if isinstance(v, dict):
                walk(v, key + ".", cls, sl)
            else:
                add(key, v, cls, sl)

    for k, v in data.items():
        if k in ("per_class", "per_slice") and isinstance(v, dict):
            for group, metrics in v.items():
                if isinstance(metrics, dict):
                    walk(metrics, "", cls=str(group) if k == "per_class" else None,
                         sl=str(group) if k == "per_slice" else None)
        elif isinstance(v, dict):
            walk(v, f"{k}.")
        else:
            add(k, v)
    if pts:
        write_metric_points(vault, pts)
    return len(pts)


# --------------------------------------------------------------------------- reading


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


_LIST_COLUMNS = ("run_id", "status", "kind", "code_commit", "clean", "dataset", "config_id", "model_name",
                 "model_version", "exit_code", "started_at", "ended_at", "created_by")


def list_runs(vault, *, dataset: str | None = None, status: str | None = None, limit: int | None = None) -> list[dict]:
    """Runs, newest first, each with its latest overall metrics ({key: value}); seeds, command and
    environment are in :func:`get_run`.

    Built from plain tuples and the ``run_latest_metrics`` table: listing 10,000 runs must
    take well under 200 ms, and per-row attribute access alone would cost more than that.
    """
    import sqlalchemy as sa

    from lensvault.catalog.runs_schema import runs
    from lensvault.catalog.runs_schema import run_latest_metrics as lm

    reap_dead_runs(vault)
    q = sa.select(*[runs.c[c] for c in _LIST_COLUMNS]).order_by(runs.c.started_at.desc(), runs.c.run_id.desc())
    if dataset:
        q = q.where(runs.c.dataset == dataset)
    if status:
        q = q.where(runs.c.status == status)
    if limit:
        q = q.limit(limit)
    with vault.catalog.read() as conn:
        rows = _fetch_raw(conn, q)
        latest: dict[str, dict] = {}
        mq = sa.select(lm.c.run_id, lm.c.key, lm.c.value)
        if limit or dataset or status:
            mq = mq.where(lm.c.run_id.in_([r[0] for r in rows]))
        for run_id, key, value in _fetch_raw(conn, mq):
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
    return out


def reap_dead_runs(vault) -> list[dict]:
    from lensvault.runs.crashes import reap_dead_runs as reap

    return reap(vault)


def _fetch_raw(conn, query) -> list[tuple]:
    """All rows as plain tuples straight from the DB-API cursor (no per-row Row objects).

    The query is compiled with its values inlined by SQLAlchemy's own literal rendering,
    which quotes them for the dialect.
    """
    sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    cur = conn.connection.driver_connection.cursor()
    try:
        cur.execute(sql)
        return cur.fetchall()
    finally:
        cur.close()


_SHOW_CANDIDATES = 10


def find_run_id(conn, ref: str) -> str | None:
    """The run ``ref`` names — an id, a unique prefix of one (6+ characters), or ``latest``
    (``last``) for the newest run — or None when it names no run. An ambiguous prefix is an
    error naming the candidates."""
    import sqlalchemy as sa

    from lensvault.catalog.runs_schema import runs

    if ref in ("latest", "last"):
        return conn.execute(sa.select(runs.c.run_id).order_by(runs.c.started_at.desc(), runs.c.run_id.desc())
                            .limit(1)).scalar()
    if conn.execute(sa.select(runs.c.run_id).where(runs.c.run_id == ref)).first() is not None:
        return ref
    if len(ref) < 6 or "@" in ref:
        return None
    found = [r[0] for r in conn.execute(sa.select(runs.c.run_id).where(runs.c.run_id.startswith(ref, autoescape=True))
                                        .order_by(runs.c.run_id))]
    if len(found) > 1:
        shown = ", ".join(found[:_SHOW_CANDIDATES])
        more = f" … and {len(found) - _SHOW_CANDIDATES} more" if len(found) > _SHOW_CANDIDATES else ""
        raise UsageError(f"run id prefix {ref!r} is ambiguous: it matches {len(found)} runs: {shown}{more}",
                         where=ref, fix="give more of the run id (one of the candidates above)",
                         candidates=found)
    return found[0] if found else None


def resolve_run_id(conn, ref: str) -> str:
    """Like :func:`find_run_id`, but a ref that names no run is NotFound."""
    run_id = find_run_id(conn, ref)
    if run_id is None:
        if ref in ("latest", "last"):
            raise NotFound("there are no runs yet", where=ref,
                           fix="start one with `lensvault run --dataset NAME@X.Y.Z --config ID -- CMD`")
        raise NotFound(f"no run {ref!r}", where=ref, fix="see `lensvault runs list` for the run ids")
    return run_id


_resolve_run_id = resolve_run_id  # the name other modules imported first


def get_run(vault, ref: str, *, points: bool = False) -> dict:
    """Everything recorded about a run: the row, params, metrics, artifacts, environment, evaluations."""
    import sqlalchemy as sa

    from lensvault.catalog.runs_schema import evaluations, run_artifacts, run_metrics, run_params, runs
    from lensvault.catalog.runs_schema import run_latest_metrics as lm

    reap_dead_runs(vault)
    with vault.catalog.read() as conn:
        run_id = resolve_run_id(conn, ref)
        row = conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).one()
        latest = {r.key: r.value for r in conn.execute(
            sa.select(lm.c.key, lm.c.value).where(lm.c.run_id == run_id).order_by(lm.c.key))}
        # Per class and per slice: the last value logged for each (key, class, slice).
        breakdown: dict[str, dict] = {"per_class": {}, "per_slice": {}}
        mrows = conn.execute(sa.select(run_metrics).where(run_metrics.c.run_id == run_id)
                             .order_by(run_metrics.c.id)).all()
        for m in mrows:
            if m.class_name is not None:
                breakdown["per_class"].setdefault(m.class_name, {})[m.key if m.slice is None else f"{m.key}[{m.slice}]"] = m.value
            elif m.slice is not None:
                breakdown["per_slice"].setdefault(m.slice, {})[m.key] = m.value
        params = {r.key: json.loads(r.value) for r in conn.execute(
            sa.select(run_params).where(run_params.c.run_id == run_id).order_by(run_params.c.key))}
        artifacts = [{"path": a.path, "size": a.size, "sha256": a.sha256} for a in conn.execute(
            sa.select(run_artifacts).where(run_artifacts.c.run_id == run_id).order_by(run_artifacts.c.path))]
        evals = [{"eval_id": e.eval_id, "dataset": e.dataset, "split": e.split, "created_at": e.created_at,
                  "overall": json.loads(e.metrics).get("overall")} for e in conn.execute(
            sa.select(evaluations).where(evaluations.c.run_id == run_id).order_by(evaluations.c.created_at))]
    out = _run_dict(row, latest=latest)
    out.update({"metrics_per_class": breakdown["per_class"], "metrics_per_slice": breakdown["per_slice"],
                "metric_points": len(mrows), "params": params, "artifacts": artifacts, "evaluations": evals})
    if points:
        out["points"] = [{"key": m.key, "value": m.value, "step": m.step, "class": m.class_name, "slice": m.slice,
                          "at": m.at} for m in mrows]
    out["environment"] = json.loads(vault.store.read_bytes(row.environment_oid)) if row.environment_oid else None
    return out


def run_log(vault, ref: str) -> tuple[str, bytes]:
    """(run id, the output the run recorded)."""
    import sqlalchemy as sa

    from lensvault.catalog.runs_schema import runs

    reap_dead_runs(vault)  # a crashed run's partial log is kept as its log
    with vault.catalog.read() as conn:
        run_id = resolve_run_id(conn, ref)
        row = conn.execute(sa.select(runs.c.status, runs.c.log_oid).where(runs.c.run_id == run_id)).one()
    if not row.log_oid:
        why = ("wait until it ends: its output is shown where it runs and recorded when it ends"
               if row.status == "running" else
               "logs are recorded by `lensvault run`; standalone runs have none")
        raise NotFound(f"run {run_id} has no recorded log", where=run_id, fix=why)
    return run_id, vault.store.read_bytes(row.log_oid)


def compare_runs(vault, a: str, b: str) -> dict:
    """Config keys, data version, code commit, environment and metrics of two runs, side by side."""
    from lensvault.configs import flatten
    from lensvault.environment import diff_environments
    from lensvault.runs.configs import get_config

    ra, rb = get_run(vault, a), get_run(vault, b)
    cfg = {}
    with vault.catalog.read() as conn:
        for side, r in (("a", ra), ("b", rb)):
            try:
                cfg[side] = flatten(get_config(conn, r["config"]).values) if r["config"] else {}
            except NotFound:
                cfg[side] = {}
    fa, fb = cfg["a"], cfg["b"]
    config_rows = [{"key": k, "a": fa.get(k), "b": fb.get(k), "differs": fa.get(k) != fb.get(k) or (k in fa) != (k in fb)}
                   for k in sorted(fa.keys() | fb.keys())]

    def side_by_side(x: dict, y: dict) -> list[dict]:
        return [{"key": k, "a": x.get(k), "b": y.get(k), "differs": x.get(k) != y.get(k)} for k in sorted(x.keys() | y.keys())]

    per_class = {}
    for cls in sorted(ra["metrics_per_class"].keys() | rb["metrics_per_class"].keys()):
        per_class[cls] = side_by_side(ra["metrics_per_class"].get(cls, {}), rb["metrics_per_class"].get(cls, {}))
    fields = ("dataset", "dataset_snapshot", "config", "code_commit", "clean", "seeds", "status", "command", "model")
    return {
        "a": ra["run_id"], "b": rb["run_id"],
        "run": [{"key": f, "a": ra[f], "b": rb[f], "differs": ra[f] != rb[f]} for f in fields],
        "config": config_rows,
        "environment": diff_environments(ra["environment"] or {}, rb["environment"] or {}),
        "metrics": side_by_side(ra["metrics"], rb["metrics"]),
        "metrics_per_class": per_class,
        "params": side_by_side(ra["params"], rb["params"]),
    }

