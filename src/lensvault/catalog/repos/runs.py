"""Runs with their params, metric points, latest metric values, artifacts, and the model
versions they reserve. A run row changes only while open (the trigger of m0002 freezes it)."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.sql import Select

from lensvault.catalog.repos._base import Conflict, Repo, RowT, chunks
from lensvault.catalog.runs_schema import model_reservations as mr
from lensvault.catalog.runs_schema import run_artifacts, run_metrics, run_params, runs
from lensvault.catalog.runs_schema import run_latest_metrics as lm

__all__ = ["METRIC_COLUMNS", "RunRepo"]

# The order of a metric point tuple, as the recorder buffers it and the ledger records it.
METRIC_COLUMNS = ("run_id", "key", "value", "step", "class_name", "slice", "at")

LIST_COLUMNS = ("run_id", "status", "kind", "code_commit", "clean", "dataset", "config_id", "model_name",
                "model_version", "exit_code", "started_at", "ended_at", "created_by")


_RUN_ID: sa.BindParameter[str] = sa.bindparam("run_id")


@cache
def _by_run_id() -> dict[str, Any]:
    """The statements that read one run (every ``runs show``, every request for a run), built
    once with the run id as a bound parameter: building a statement and its cache key anew on
    every call cost more than running it."""
    return {
        "row": sa.select(runs).where(runs.c.run_id == _RUN_ID),
        "id": sa.select(runs.c.run_id).where(runs.c.run_id == _RUN_ID),
        "latest": sa.select(lm.c.key, lm.c.value).where(lm.c.run_id == _RUN_ID).order_by(lm.c.key),
        "points": sa.select(run_metrics.c.key, run_metrics.c.value, run_metrics.c.step, run_metrics.c.class_name,
                            run_metrics.c.slice, run_metrics.c.at)
                    .where(run_metrics.c.run_id == _RUN_ID).order_by(run_metrics.c.id),
        "params": sa.select(run_params).where(run_params.c.run_id == _RUN_ID).order_by(run_params.c.key),
        "artifacts": sa.select(run_artifacts).where(run_artifacts.c.run_id == _RUN_ID).order_by(run_artifacts.c.path),
        "open_on_host": sa.select(runs.c.run_id, runs.c.owner_host, runs.c.owner_pid, runs.c.owner_started)
                          .where(runs.c.status.in_(sa.bindparam("states", expanding=True)),
                                 runs.c.owner_host == sa.bindparam("host")),
    }


@cache
def _listing(dataset: bool, status: bool, limit: bool) -> dict[str, Any]:
    """The run list's statements for one combination of filters, built once (values bound)."""
    conds = ([runs.c.dataset == sa.bindparam("dataset")] if dataset else []) + \
            ([runs.c.status == sa.bindparam("status")] if status else [])
    rows = sa.select(*[runs.c[c] for c in LIST_COLUMNS]).where(*conds) \
             .order_by(runs.c.started_at.desc(), runs.c.run_id.desc())
    if limit:
        rows = rows.limit(sa.bindparam("limit"))
    ids = rows.with_only_columns(runs.c.run_id).subquery()
    return {"rows": rows,
            "latest": sa.select(lm.c.run_id, lm.c.key, lm.c.value).join(ids, ids.c.run_id == lm.c.run_id),
            "count": sa.select(sa.func.count()).select_from(runs).where(*conds)}


def _listing_params(dataset: str | None, status: str | None, limit: int | None) -> dict[str, Any]:
    return {k: v for k, v in (("dataset", dataset), ("status", status), ("limit", limit)) if v}


class RunRepo(Repo):
    # -- the run row
    def get(self, run_id: str) -> RowT | None:
        return self.conn.execute(_by_run_id()["row"], {"run_id": run_id}).first()

    def one(self, run_id: str) -> RowT:
        """The row of a run known to exist (a resolved id); an error from the database otherwise."""
        return self.conn.execute(_by_run_id()["row"], {"run_id": run_id}).one()

    def exists(self, run_id: str) -> bool:
        return self.conn.execute(_by_run_id()["id"], {"run_id": run_id}).first() is not None

    def status(self, run_id: str) -> str | None:
        status = self.conn.execute(sa.select(runs.c.status).where(runs.c.run_id == run_id)).scalar()
        return None if status is None else str(status)

    def newest_id(self) -> str | None:
        run_id = self.conn.execute(sa.select(runs.c.run_id).order_by(runs.c.started_at.desc(), runs.c.run_id.desc())
                                   .limit(1)).scalar()
        return None if run_id is None else str(run_id)

    def ids_starting_with(self, prefix: str) -> list[str]:
        return [str(r[0]) for r in self.conn.execute(
            sa.select(runs.c.run_id).where(runs.c.run_id.startswith(prefix, autoescape=True)).order_by(runs.c.run_id))]

    def open_on_host(self, host: str, open_states: Iterable[str]) -> list[RowT]:
        """``run_id`` and owner (``owner_host``, ``owner_pid``, ``owner_started``) of the open runs a host owns."""
        return list(self.conn.execute(_by_run_id()["open_on_host"], {"states": list(open_states), "host": host}))

    def using_dataset(self, ref: str, *, limit: int | None = None) -> list[RowT]:
        """Runs on a dataset version, newest first (the first ``limit``: read from an m0011 index)."""
        return self._newest(runs.c.dataset == ref, limit)

    def using_config(self, config_id: str, *, limit: int | None = None) -> list[RowT]:
        """Runs with a config, newest first (the first ``limit``: read from an m0011 index)."""
        return self._newest(runs.c.config_id == config_id, limit)

    def count_where(self, *, dataset: str | None = None, config_id: str | None = None) -> int:
        """How many runs use a dataset version or a config (an index count)."""
        col, value = (runs.c.dataset, dataset) if dataset is not None else (runs.c.config_id, config_id)
        return int(self.conn.execute(sa.select(sa.func.count()).select_from(runs).where(col == value)).scalar_one())

    def _newest(self, cond: Any, limit: int | None) -> list[RowT]:
        q = sa.select(runs).where(cond).order_by(runs.c.started_at.desc(), runs.c.run_id.desc())
        return self._all(q if limit is None else q.limit(limit))

    def reproducing(self, refs: Iterable[str]) -> list[RowT]:
        """Runs that reproduce any of ``refs`` (model refs or run ids)."""
        out: list[RowT] = []
        for chunk in chunks(refs):
            out += self._all(sa.select(runs).where(runs.c.reproduces.in_(chunk)))
        return out

    def listing(self, *, dataset: str | None = None, status: str | None = None,
                limit: int | None = None) -> list[tuple[Any, ...]]:
        """Plain tuples of :data:`LIST_COLUMNS`, newest first (see :meth:`_fetch_raw`)."""
        return self._fetch_raw(_listing(bool(dataset), bool(status), bool(limit))["rows"],
                               _listing_params(dataset, status, limit))

    def listing_latest_metrics(self, *, dataset: str | None = None, status: str | None = None,
                               limit: int | None = None) -> list[tuple[Any, ...]]:
        """(run_id, key, value) of the runs :meth:`listing` gives, in one statement (the ids
        listed again, as a subquery: sending them back as an IN list of 100 bound values cost
        more than reading the rows)."""
        return self._fetch_raw(_listing(bool(dataset), bool(status), bool(limit))["latest"],
                               _listing_params(dataset, status, limit))

    def count(self, *, dataset: str | None = None, status: str | None = None) -> int:
        """How many runs :meth:`listing` would give without a limit (an index count)."""
        return int(self.conn.execute(_listing(bool(dataset), bool(status), False)["count"],
                                     _listing_params(dataset, status, None)).scalar_one())

    def add(self, row: dict[str, Any]) -> None:
        """Insert a run; :class:`Conflict` when its id is taken."""
        try:
            self.conn.execute(runs.insert().values(**row))
        except sa.exc.IntegrityError as e:
            raise Conflict(str(e.orig)) from e

    def end(self, run_id: str, values: dict[str, Any], *, open_states: Iterable[str]) -> bool:
        """Set ``values`` on the run if it is still open; False when it had ended already."""
        return bool(self.conn.execute(runs.update().where(runs.c.run_id == run_id, runs.c.status.in_(open_states))
                                      .values(**values)).rowcount)

    def set_environment(self, run_id: str, oid: str) -> None:
        self.conn.execute(runs.update().where(runs.c.run_id == run_id).values(environment_oid=oid))

    # -- model reservations
    def reserve(self, reservation: dict[str, Any]) -> None:
        """Reserve NAME@VERSION for a run; :class:`Conflict` when another run holds it."""
        try:
            self.conn.execute(mr.insert().values(**reservation))
        except sa.exc.IntegrityError as e:
            raise Conflict(str(e.orig)) from e

    def reservation_of(self, run_id: str) -> RowT | None:
        """The reservation a run holds (``name``, ``version``), or None."""
        return self._first(sa.select(mr.c.name, mr.c.version).where(mr.c.run_id == run_id))

    def reservation(self, name: str, version: str) -> RowT | None:
        """Who holds NAME@VERSION (the row: ``run_id``, ``created_at``), or None."""
        return self._first(sa.select(mr).where(mr.c.name == name, mr.c.version == version))

    def release(self, run_id: str) -> None:
        self.conn.execute(mr.delete().where(mr.c.run_id == run_id))

    # -- params
    def params(self, run_id: str) -> list[RowT]:
        """``key``, ``value`` (JSON), by key."""
        return list(self.conn.execute(_by_run_id()["params"], {"run_id": run_id}))

    def add_params(self, rows: list[dict[str, Any]]) -> None:
        self.conn.execute(run_params.insert(), rows)

    # -- metrics
    def add_metric_points(self, points: list[tuple[Any, ...]], *, keep_latest: bool = True) -> None:
        """Insert points (tuples in :data:`METRIC_COLUMNS` order) and, with ``keep_latest``, make
        the last overall point (no class, no slice) of each key its run's latest value."""
        latest: dict[tuple[str, str], tuple[Any, ...]] = {}
        if keep_latest:
            for p in points:
                if p[4] is None and p[5] is None:
                    latest[(p[0], p[1])] = p
        if self.conn.dialect.name == "sqlite":
            # The DB-API executemany is several times faster than SQLAlchemy's for 10^5 rows.
            raw = self._driver()
            raw.executemany("INSERT INTO run_metrics (run_id, key, value, step, class_name, slice, at) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?)", points)
            raw.executemany("INSERT INTO run_latest_metrics (run_id, key, value, step, at) VALUES (?, ?, ?, ?, ?) "
                            "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, step = excluded.step, "
                            "at = excluded.at", [(p[0], p[1], p[2], p[3], p[6]) for p in latest.values()])
            return
        self.conn.execute(run_metrics.insert(), [dict(zip(METRIC_COLUMNS, p)) for p in points])
        if latest:
            from sqlalchemy.dialects.postgresql import insert

            stmt = insert(lm)
            stmt = stmt.on_conflict_do_update(index_elements=["run_id", "key"], set_={
                "value": stmt.excluded.value, "step": stmt.excluded.step, "at": stmt.excluded.at})
            self.conn.execute(stmt, [{"run_id": p[0], "key": p[1], "value": p[2], "step": p[3], "at": p[6]}
                                     for p in latest.values()])

    def add_latest_metrics(self, points: list[tuple[Any, ...]]) -> None:
        """Latest values from points (catalog rebuild, which replays every point first)."""
        if points:
            self.conn.execute(lm.insert(), [{"run_id": p[0], "key": p[1], "value": p[2], "step": p[3], "at": p[6]}
                                            for p in points])

    def metric_points(self, run_id: str) -> list[RowT]:
        """Every point of a run, in the order it was logged."""
        return self._all(sa.select(run_metrics).where(run_metrics.c.run_id == run_id).order_by(run_metrics.c.id))

    def metric_point_tuples(self, run_id: str) -> list[tuple[Any, ...]]:
        """(key, value, step, class_name, slice, at) of every point of a run, in the order it was
        logged, as plain tuples (a run's points are the bulk of ``runs show --points``)."""
        return self._fetch_raw(_by_run_id()["points"], {"run_id": run_id})

    def metric_keys(self, run_id: str) -> set[tuple[str, str | None, str | None]]:
        """(key, class_name, slice) of every metric the run logged."""
        return {(r.key, r.class_name, r.slice) for r in self.conn.execute(
            sa.select(run_metrics.c.key, run_metrics.c.class_name, run_metrics.c.slice)
            .where(run_metrics.c.run_id == run_id).distinct())}

    def latest_metrics(self, run_id: str) -> list[RowT]:
        """``key``, ``value`` of a run's latest overall metrics, by key."""
        return list(self.conn.execute(_by_run_id()["latest"], {"run_id": run_id}))

    def latest_metrics_of(self, run_ids: list[str] | None) -> list[tuple[Any, ...]]:
        """(run_id, key, value) of the listed runs (None: every run), as plain tuples."""
        q = sa.select(lm.c.run_id, lm.c.key, lm.c.value)
        if run_ids is not None:
            q = q.where(lm.c.run_id.in_(run_ids))
        return self._fetch_raw(q)

    # -- artifacts
    def artifacts(self, run_id: str) -> list[RowT]:
        """``path``, ``sha256``, ``size``, by path."""
        return list(self.conn.execute(_by_run_id()["artifacts"], {"run_id": run_id}))

    def add_artifacts(self, rows: list[dict[str, Any]]) -> None:
        self.conn.execute(run_artifacts.insert(), rows)

    # --
    def _fetch_raw(self, query: Select[Any], params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """All rows as plain tuples straight from the DB-API cursor (no per-row Row objects):
        listing 10,000 runs must take well under 200 ms, and per-row attribute access alone
        would cost more than that.

        The statement is executed by SQLAlchemy with bound parameters, so its compiled form is
        cached (rendering the values into the SQL compiled it anew on every call: half the
        cost of listing 100 runs); only the rows are taken from the driver's cursor.
        """
        result = self.conn.execute(query, params)
        try:
            return cast("list[tuple[Any, ...]]", result.cursor.fetchall())  # the driver's list of tuples
        finally:
            result.close()

    def _driver(self) -> Any:
        """The DB-API connection under this one (there while the connection is open)."""
        raw = self.conn.connection.driver_connection
        assert raw is not None
        return raw
