"""Model versions and the files of their bundles (write-once)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from lensvault.catalog import sql
from lensvault.catalog.repos._base import Conflict, Repo, RowT, name_version_sql

__all__ = ["ModelRepo"]

_NAME_VERSION = name_version_sql("model_versions")


class ModelRepo(Repo):
    def get(self, name: str, version: str) -> RowT | None:
        return self._first(_NAME_VERSION["get"], {"name": name, "version": version})

    def exists(self, name: str, version: str | None = None) -> bool:
        """Is there a model ``name`` (at ``version``)?"""
        if version is None:
            return self._first(_NAME_VERSION["exists"], {"name": name}) is not None
        return self._first("SELECT id FROM model_versions WHERE name = :name AND version = :version LIMIT 1",
                           {"name": name, "version": version}) is not None

    def of_name(self, name: str | None = None) -> list[RowT]:
        """Every version of a model (None: of every model), in no particular order."""
        if name is None:
            return self._all("SELECT * FROM model_versions")
        return self._all("SELECT * FROM model_versions WHERE name = :name", {"name": name})

    def refs(self) -> set[tuple[str, str]]:
        """(name, version) of every model version."""
        return {(str(n), str(v)) for n, v in sql.tuples(self.conn, "SELECT name, version FROM model_versions")}

    def from_runs(self, run_ids: Iterable[str]) -> list[RowT]:
        """The versions registered from any of these runs."""
        return [m for batch in self.from_runs_by_batch(run_ids) for m in batch]

    def from_runs_by_batch(self, run_ids: Iterable[str]) -> Iterator[list[RowT]]:
        """Like :meth:`from_runs`, one list per batch of run ids, for callers that handle each
        batch before asking for the next."""
        return self._batched("SELECT * FROM model_versions WHERE run_id IN (:ids)", "ids", run_ids)

    def files(self, name: str, version: str) -> list[RowT]:
        return self._all("SELECT * FROM model_files WHERE name = :name AND version = :version",
                         {"name": name, "version": version})

    def add(self, row: dict[str, Any], files: list[dict[str, Any]]) -> None:
        """Insert a version and its files; :class:`Conflict` when NAME@VERSION exists (the
        transaction cannot go on: the caller ends it)."""
        import sqlalchemy as sa

        from lensvault.catalog.registry_schema import model_files, model_versions

        try:
            self._sa.execute(model_versions.insert().values(**row))
        except sa.exc.IntegrityError as e:
            raise Conflict(str(e.orig)) from e
        if files:
            self._sa.execute(model_files.insert(), files)
