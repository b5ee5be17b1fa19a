"""Runs with their params, metric points, latest metric values, artifacts, and the model
versions they reserve. A run row changes only while open (the trigger of m0002 freezes it)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lensvault.catalog import sql
from lensvault.catalog.repos._base import Conflict, Repo, RowT

__all__ = ["METRIC_COLUMNS", "RunRepo"]

# The order of a metric point tuple, as the recorder buffers it and the ledger records it.
METRIC_COLUMNS = ("run_id", "key", "value", "step", "class_name", "slice", "at")

LIST_COLUMNS = ("run_id", "status", "kind", "code_commit", "clean", "dataset", "config_id", "model_name",
                "model_version", "exit_code", "started_at", "ended_at", "created_by")

NEWEST_FIRST = "ORDER BY started_at DESC, run_id DESC"  # read from the m0010/m0011 indexes


def _listing(dataset: str | None, status: str | None, limit: int | None) -> tuple[dict[str, str], dict[str, Any]]:
    """The run list's statements for one combination of filters, and their parameters."""
    conds = [c for c, v in (("dataset = :dataset", dataset), ("status = :status", status)) if v]
    where = f" WHERE {' AND '.join(conds)}" if conds else ""
    rows = f"SELECT {', '.join(LIST_COLUMNS)} FROM runs{where} {NEWEST_FIRST}" + (" LIMIT :limit" if limit else "")
    params = {k: v for k, v in (("dataset", dataset), ("status", status), ("limit", limit)) if v}
    return {"rows": rows,
            # The ids listed again, as a subquery: sending them back as an IN list of 100 bound
            # values cost more than reading the rows.
            "latest": "SELECT m.run_id, m.\"key\", m.value FROM run_latest_metrics m "
                      f"JOIN (SELECT run_id FROM runs{where} {NEWEST_FIRST}{' LIMIT :limit' if limit else ''}) ids "
                      "ON ids.run_id = m.run_id",
            "count": f"SELECT count(*) FROM runs{where}"}, params


def _like_prefix(prefix: str) -> str:
    """A LIKE pattern matching what starts with ``prefix`` (``ESCAPE '/'``)."""
    return prefix.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"


class RunRepo(Repo):
    # -- the run row
    def get(self, run_id: str) -> RowT | None:
        return self._first("SELECT * FROM runs WHERE run_id = :run_id", {"run_id": run_id})

    def one(self, run_id: str) -> RowT:
        """The row of a run known to exist (a resolved id); LookupError otherwise."""
        row = self.get(run_id)
        if row is None:
            raise LookupError(f"no run {run_id} in the catalog")
        return row

    def exists(self, run_id: str) -> bool:
        return self._first("SELECT run_id FROM runs WHERE run_id = :run_id", {"run_id": run_id}) is not None

    def status(self, run_id: str) -> str | None:
        status = self._scalar("SELECT status FROM runs WHERE run_id = :run_id", {"run_id": run_id})
        return None if status is None else str(status)

    def newest_id(self) -> str | None:
        run_id = self._scalar(f"SELECT run_id FROM runs {NEWEST_FIRST} LIMIT 1")
        return None if run_id is None else str(run_id)

    def ids_starting_with(self, prefix: str) -> list[str]:
        return [str(v) for v in sql.values(self.conn, "SELECT run_id FROM runs WHERE run_id LIKE :pattern ESCAPE '/' "
                                                      "ORDER BY run_id", {"pattern": _like_prefix(prefix)})]

    def open_on_host(self, host: str, open_states: Iterable[str]) -> list[RowT]:
        """``run_id`` and owner (``owner_host``, ``owner_pid``, ``owner_started``) of the open runs a host owns."""
        return self._all("SELECT run_id, owner_host, owner_pid, owner_started FROM runs "
                         "WHERE status IN (:states) AND owner_host = :host", {"states": list(open_states), "host": host})

    def using_dataset(self, ref: str, *, limit: int | None = None) -> list[RowT]:
        """Runs on a dataset version, newest first (the first ``limit``: read from an m0011 index)."""
        return self._newest("dataset", ref, limit)

    def using_config(self, config_id: str, *, limit: int | None = None) -> list[RowT]:
        """Runs with a config, newest first (the first ``limit``: read from an m0011 index)."""
        return self._newest("config_id", config_id, limit)

    def count_where(self, *, dataset: str | None = None, config_id: str | None = None) -> int:
        """How many runs use a dataset version or a config (an index count)."""
        col, value = ("dataset", dataset) if dataset is not None else ("config_id", config_id)
        return int(self._scalar(f"SELECT count(*) FROM runs WHERE {col} = :value", {"value": value}))

    def _newest(self, column: str, value: str, limit: int | None) -> list[RowT]:
        q = f"SELECT * FROM runs WHERE {column} = :value {NEWEST_FIRST}"
        return self._all(q if limit is None else q + " LIMIT :limit", {"value": value, "limit": limit})

    def reproducing(self, refs: Iterable[str]) -> list[RowT]:
        """Runs that reproduce any of ``refs`` (model refs or run ids)."""
        return [r for batch in self._batched("SELECT * FROM runs WHERE reproduces IN (:refs)", "refs", refs)
                for r in batch]

    def listing(self, *, dataset: str | None = None, status: str | None = None,
                limit: int | None = None) -> list[tuple[Any, ...]]:
        """Plain tuples of :data:`LIST_COLUMNS`, newest first (plain tuples: listing 10,000 runs
        must take well under 200 ms, and per-row attribute access alone would cost more)."""
        q, params = _listing(dataset, status, limit)
        return sql.tuples(self.conn, q["rows"], params)

    def listing_latest_metrics(self, *, dataset: str | None = None, status: str | None = None,
                               limit: int | None = None) -> list[tuple[Any, ...]]:
        """(run_id, key, value) of the runs :meth:`listing` gives, in one statement."""
        q, params = _listing(dataset, status, limit)
        return sql.tuples(self.conn, q["latest"], params)

    def count(self, *, dataset: str | None = None, status: str | None = None) -> int:
        """How many runs :meth:`listing` would give without a limit (an index count)."""
        q, params = _listing(dataset, status, None)
        return int(self._scalar(q["count"], params))

    def add(self, row: dict[str, Any]) -> None:
        """Insert a run; :class:`Conflict` when its id is taken."""
        import sqlalchemy as sa

        from lensvault.catalog.runs_schema import runs

        try:
            self._sa.execute(runs.insert().values(**row))
        except sa.exc.IntegrityError as e:
            raise Conflict(str(e.orig)) from e

    def end(self, run_id: str, values: dict[str, Any], *, open_states: Iterable[str]) -> bool:
        """Set ``values`` on the run if it is still open; False when it had ended already."""
        from lensvault.catalog.runs_schema import runs

        return bool(self._sa.execute(runs.update().where(runs.c.run_id == run_id, runs.c.status.in_(open_states))
                                     .values(**values)).rowcount)

    def set_environment(self, run_id: str, oid: str) -> None:
        from lensvault.catalog.runs_schema import runs

        self._sa.execute(runs.update().where(runs.c.run_id == run_id).values(environment_oid=oid))

    # -- model reservations
    def reserve(self, reservation: dict[str, Any]) -> None:
        """Reserve NAME@VERSION for a run; :class:`Conflict` when another run holds it."""
        import sqlalchemy as sa

        from lensvault.catalog.runs_schema import model_reservations as mr

        try:
            self._sa.execute(mr.insert().values(**reservation))
        except sa.exc.IntegrityError as e:
            raise Conflict(str(e.orig)) from e

    def reservation_of(self, run_id: str) -> RowT | None:
        """The reservation a run holds (``name``, ``version``), or None."""
        return self._first("SELECT name, version FROM model_reservations WHERE run_id = :run_id", {"run_id": run_id})

    def reservation(self, name: str, version: str) -> RowT | None:
        """Who holds NAME@VERSION (the row: ``run_id``, ``created_at``), or None."""
        return self._first("SELECT * FROM model_reservations WHERE name = :name AND version = :version",
                           {"name": name, "version": version})

    def release(self, run_id: str) -> None:
        from lensvault.catalog.runs_schema import model_reservations as mr

        self._sa.execute(mr.delete().where(mr.c.run_id == run_id))

    # -- params
    def params(self, run_id: str) -> list[RowT]:
        """``key``, ``value`` (JSON), by key."""
        return self._all('SELECT * FROM run_params WHERE run_id = :run_id ORDER BY "key"', {"run_id": run_id})

    def add_params(self, rows: list[dict[str, Any]]) -> None:
        from lensvault.catalog.runs_schema import run_params

        self._sa.execute(run_params.insert(), rows)

    # -- metrics
    def add_metric_points(self, points: list[tuple[Any, ...]], *, keep_latest: bool = True) -> None:
        """Insert points (tuples in :data:`METRIC_COLUMNS` order) and, with ``keep_latest``, make
        the last overall point (no class, no slice) of each key its run's latest value."""
        from lensvault.catalog.runs_schema import run_latest_metrics as lm
        from lensvault.catalog.runs_schema import run_metrics

        latest: dict[tuple[str, str], tuple[Any, ...]] = {}
        if keep_latest:
            for p in points:
                if p[4] is None and p[5] is None:
                    latest[(p[0], p[1])] = p
        conn = self._sa
        if conn.dialect.name == "sqlite":
            # The DB-API executemany is several times faster than SQLAlchemy's for 10^5 rows.
            raw = self._driver()
            raw.executemany("INSERT INTO run_metrics (run_id, key, value, step, class_name, slice, at) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?)", points)
            raw.executemany("INSERT INTO run_latest_metrics (run_id, key, value, step, at) VALUES (?, ?, ?, ?, ?) "
                            "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, step = excluded.step, "
                            "at = excluded.at", [(p[0], p[1], p[2], p[3], p[6]) for p in latest.values()])
            return
        conn.execute(run_metrics.insert(), [dict(zip(METRIC_COLUMNS, p)) for p in points])
        if latest:
            from sqlalchemy.dialects.postgresql import insert

            stmt = insert(lm)
            stmt = stmt.on_conflict_do_update(index_elements=["run_id", "key"], set_={
                "value": stmt.excluded.value, "step": stmt.excluded.step, "at": stmt.excluded.at})
            conn.execute(stmt, [{"run_id": p[0], "key": p[1], "value": p[2], "step": p[3], "at": p[6]}
                                for p in latest.values()])

    def add_latest_metrics(self, points: list[tuple[Any, ...]]) -> None:
        """Latest values from points (catalog rebuild, which replays every point first)."""
        from lensvault.catalog.runs_schema import run_latest_metrics as lm

        if points:
            self._sa.execute(lm.insert(), [{"run_id": p[0], "key": p[1], "value": p[2], "step": p[3], "at": p[6]}
                                           for p in points])

    def metric_points(self, run_id: str) -> list[RowT]:
        """Every point of a run, in the order it was logged."""
        return self._all("SELECT * FROM run_metrics WHERE run_id = :run_id ORDER BY id", {"run_id": run_id})

    def metric_point_tuples(self, run_id: str) -> list[tuple[Any, ...]]:
        """(key, value, step, class_name, slice, at) of every point of a run, in the order it was
        logged, as plain tuples (a run's points are the bulk of ``runs show --points``)."""
        return sql.tuples(self.conn, 'SELECT "key", value, step, class_name, slice, at FROM run_metrics '
                                     "WHERE run_id = :run_id ORDER BY id", {"run_id": run_id})

    def metric_keys(self, run_id: str) -> set[tuple[str, str | None, str | None]]:
        """(key, class_name, slice) of every metric the run logged."""
        return {(r[0], r[1], r[2]) for r in sql.tuples(
            self.conn, 'SELECT DISTINCT "key", class_name, slice FROM run_metrics WHERE run_id = :run_id',
            {"run_id": run_id})}

    def latest_metrics(self, run_id: str) -> list[RowT]:
        """``key``, ``value`` of a run's latest overall metrics, by key."""
        return self._all('SELECT "key", value FROM run_latest_metrics WHERE run_id = :run_id ORDER BY "key"',
                         {"run_id": run_id})

    def latest_metrics_of(self, run_ids: list[str] | None) -> list[tuple[Any, ...]]:
        """(run_id, key, value) of the listed runs (None: every run), as plain tuples."""
        q = 'SELECT run_id, "key", value FROM run_latest_metrics'
        if run_ids is None:
            return sql.tuples(self.conn, q)
        return sql.tuples(self.conn, q + " WHERE run_id IN (:ids)", {"ids": list(run_ids)})

    # -- artifacts
    def artifacts(self, run_id: str) -> list[RowT]:
        """``path``, ``sha256``, ``size``, by path."""
        return self._all("SELECT * FROM run_artifacts WHERE run_id = :run_id ORDER BY path", {"run_id": run_id})

    def add_artifacts(self, rows: list[dict[str, Any]]) -> None:
        from lensvault.catalog.runs_schema import run_artifacts

        self._sa.execute(run_artifacts.insert(), rows)

    # --
    def _driver(self) -> Any:
        """The DB-API connection under this one (there while the connection is open)."""
        raw = self._sa.connection.driver_connection
        assert raw is not None
        return raw
