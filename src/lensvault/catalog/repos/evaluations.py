"""Evaluations (write-once): metrics of predictions on a dataset version's split, attached to
a run, a model version, or neither."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lensvault.catalog.repos._base import Repo, RowT

__all__ = ["EvaluationRepo"]

OLDEST_FIRST = "ORDER BY created_at, eval_id"


class EvaluationRepo(Repo):
    def add(self, row: dict[str, Any]) -> None:
        from lensvault.catalog.runs_schema import evaluations

        self._sa.execute(evaluations.insert().values(**row))

    def of(self, *, run_id: str | None = None, model: tuple[str, str] | None = None,
           ordered: bool = True) -> list[RowT]:
        """Evaluations of a run or of a model version (name, version), or of either; oldest first
        unless ``ordered`` is False."""
        conds, params = [], {}
        if run_id is not None:
            conds.append("run_id = :run_id")
            params["run_id"] = run_id
        if model is not None:
            conds.append("(model_name = :name AND model_version = :version)")
            params.update(name=model[0], version=model[1])
        if not conds:
            return []
        q = f"SELECT * FROM evaluations WHERE {' OR '.join(conds)}"
        return self._all(f"{q} {OLDEST_FIRST}" if ordered else q, params)

    def of_model_or_its_run(self, name: str, version: str, run_id: str) -> list[RowT]:
        """Evaluations of a model version and of the run that produced it, in the database's
        order for this query (lineage shows them in it)."""
        return self._all("SELECT * FROM evaluations WHERE (model_name = :name AND model_version = :version) "
                         "OR run_id = :run_id", {"name": name, "version": version, "run_id": run_id})

    def of_run(self, run_id: str) -> list[RowT]:
        """Oldest first."""
        return self._all("SELECT * FROM evaluations WHERE run_id = :run_id ORDER BY created_at", {"run_id": run_id})

    def of_model_names(self, names: Iterable[str]) -> list[RowT]:
        """Evaluations of any version of these models (model names are few)."""
        return self._all("SELECT * FROM evaluations WHERE model_name IN (:names)", {"names": list(names)})

    def of_runs(self, run_ids: Iterable[str]) -> list[RowT]:
        return [r for batch in self._batched("SELECT * FROM evaluations WHERE run_id IN (:ids)", "ids", run_ids)
                for r in batch]

    def on_dataset(self, ref: str, *, limit: int | None = None) -> list[RowT]:
        """Evaluations on a dataset version, newest first (the first ``limit``: an m0011 index)."""
        q = "SELECT * FROM evaluations WHERE dataset = :ref ORDER BY created_at DESC, eval_id DESC"
        return self._all(q if limit is None else q + " LIMIT :limit", {"ref": ref, "limit": limit})

    def count_on_dataset(self, ref: str) -> int:
        return int(self._scalar("SELECT count(*) FROM evaluations WHERE dataset = :ref", {"ref": ref}))

    def find(self, *, dataset: str | None = None, run_id: str | None = None, model: tuple[str, str, str] | None = None,
             ad_hoc: bool = False) -> list[RowT]:
        """Oldest first; ``model`` is (name, version, run id): its evaluations and its run's."""
        conds: list[str] = []
        params: dict[str, Any] = {}
        if dataset:
            conds.append("dataset = :dataset")
            params["dataset"] = dataset
        if run_id:
            conds.append("run_id = :run_id")
            params["run_id"] = run_id
        if model:
            conds.append("((model_name = :name AND model_version = :version) OR run_id = :model_run)")
            params.update(name=model[0], version=model[1], model_run=model[2])
        if ad_hoc:
            conds.append("run_id IS NULL AND model_name IS NULL")
        where = f" WHERE {' AND '.join(conds)}" if conds else ""
        return self._all(f"SELECT * FROM evaluations{where} {OLDEST_FIRST}", params)
