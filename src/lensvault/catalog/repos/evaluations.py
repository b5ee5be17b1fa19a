"""Evaluations (write-once): metrics of predictions on a dataset version's split, attached to
a run, a model version, or neither."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

import sqlalchemy as sa

from lensvault.catalog.repos._base import Repo, RowT, chunks
from lensvault.catalog.runs_schema import evaluations as e

__all__ = ["EvaluationRepo"]


@cache
def _of_run() -> sa.Select[Any]:
    """Built once (every request for a run asks it): see runs.py's ``_by_run_id``."""
    return sa.select(e).where(e.c.run_id == sa.bindparam("run_id")).order_by(e.c.created_at)


@cache
def _of_model_or_its_run() -> sa.Select[Any]:
    """Statements read on every lineage or model request, built once (values bound): building a
    statement and its cache key anew on every call cost about as much as running it."""
    return sa.select(e).where(sa.or_(sa.and_(e.c.model_name == sa.bindparam("name"),
                                             e.c.model_version == sa.bindparam("version")),
                                     e.c.run_id == sa.bindparam("run_id")))


class EvaluationRepo(Repo):
    def add(self, row: dict[str, Any]) -> None:
        self.conn.execute(e.insert().values(**row))

    def of(self, *, run_id: str | None = None, model: tuple[str, str] | None = None,
           ordered: bool = True) -> list[RowT]:
        """Evaluations of a run or of a model version (name, version), or of either; oldest first
        unless ``ordered`` is False."""
        conds = []
        if run_id is not None:
            conds.append(e.c.run_id == run_id)
        if model is not None:
            conds.append(sa.and_(e.c.model_name == model[0], e.c.model_version == model[1]))
        if not conds:
            return []
        q = sa.select(e).where(sa.or_(*conds))
        if ordered:
            q = q.order_by(e.c.created_at, e.c.eval_id)
        return self._all(q)

    def of_model_or_its_run(self, name: str, version: str, run_id: str) -> list[RowT]:
        """Evaluations of a model version and of the run that produced it, in the database's
        order for this query (lineage shows them in it)."""
        return list(self.conn.execute(_of_model_or_its_run(), {"name": name, "version": version, "run_id": run_id}))

    def of_run(self, run_id: str) -> list[RowT]:
        """Oldest first."""
        return list(self.conn.execute(_of_run(), {"run_id": run_id}))

    def of_model_names(self, names: Iterable[str]) -> list[RowT]:
        """Evaluations of any version of these models (model names are few)."""
        return self._all(sa.select(e).where(e.c.model_name.in_(list(names))))

    def of_runs(self, run_ids: Iterable[str]) -> list[RowT]:
        out: list[RowT] = []
        for chunk in chunks(run_ids):
            out += self._all(sa.select(e).where(e.c.run_id.in_(chunk)))
        return out

    def on_dataset(self, ref: str, *, limit: int | None = None) -> list[RowT]:
        """Evaluations on a dataset version, newest first (the first ``limit``: an m0011 index)."""
        q = sa.select(e).where(e.c.dataset == ref).order_by(e.c.created_at.desc(), e.c.eval_id.desc())
        return self._all(q if limit is None else q.limit(limit))

    def count_on_dataset(self, ref: str) -> int:
        return int(self.conn.execute(sa.select(sa.func.count()).select_from(e).where(e.c.dataset == ref)).scalar_one())

    def find(self, *, dataset: str | None = None, run_id: str | None = None, model: tuple[str, str, str] | None = None,
             ad_hoc: bool = False) -> list[RowT]:
        """Oldest first; ``model`` is (name, version, run id): its evaluations and its run's."""
        q = sa.select(e).order_by(e.c.created_at, e.c.eval_id)
        if dataset:
            q = q.where(e.c.dataset == dataset)
        if run_id:
            q = q.where(e.c.run_id == run_id)
        if model:
            q = q.where(sa.or_(sa.and_(e.c.model_name == model[0], e.c.model_version == model[1]),
                               e.c.run_id == model[2]))
        if ad_hoc:
            q = q.where(e.c.run_id.is_(None), e.c.model_name.is_(None))
        return self._all(q)
