"""Model versions and the files of their bundles (write-once)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import sqlalchemy as sa

from lensvault.catalog.registry_schema import model_files
from lensvault.catalog.registry_schema import model_versions as mv
from lensvault.catalog.repos._base import Conflict, Repo, RowT, chunks, name_version_statements

__all__ = ["ModelRepo"]


class ModelRepo(Repo):
    def get(self, name: str, version: str) -> RowT | None:
        return self.conn.execute(name_version_statements(mv)["get"], {"name": name, "version": version}).first()

    def exists(self, name: str, version: str | None = None) -> bool:
        """Is there a model ``name`` (at ``version``)?"""
        if version is None:
            return self.conn.execute(name_version_statements(mv)["exists"], {"name": name}).first() is not None
        q = sa.select(mv.c.id).where(mv.c.name == name)
        if version is not None:
            q = q.where(mv.c.version == version)
        return self._first(q.limit(1)) is not None

    def of_name(self, name: str | None = None) -> list[RowT]:
        """Every version of a model (None: of every model), in no particular order."""
        q = sa.select(mv)
        if name is not None:
            q = q.where(mv.c.name == name)
        return self._all(q)

    def refs(self) -> set[tuple[str, str]]:
        """(name, version) of every model version."""
        return {(str(n), str(v)) for n, v in self.conn.execute(sa.select(mv.c.name, mv.c.version))}

    def from_runs(self, run_ids: Iterable[str]) -> list[RowT]:
        """The versions registered from any of these runs."""
        return [m for batch in self.from_runs_by_batch(run_ids) for m in batch]

    def from_runs_by_batch(self, run_ids: Iterable[str]) -> Iterator[list[RowT]]:
        """Like :meth:`from_runs`, one list per batch of run ids, for callers that handle each
        batch before asking for the next."""
        for chunk in chunks(run_ids):
            yield self._all(sa.select(mv).where(mv.c.run_id.in_(chunk)))

    def files(self, name: str, version: str) -> list[RowT]:
        return self._all(sa.select(model_files).where(model_files.c.name == name, model_files.c.version == version))

    def add(self, row: dict[str, Any], files: list[dict[str, Any]]) -> None:
        """Insert a version and its files; :class:`Conflict` when NAME@VERSION exists (the
        transaction cannot go on: the caller ends it)."""
        try:
            self.conn.execute(mv.insert().values(**row))
        except sa.exc.IntegrityError as e:
            raise Conflict(str(e.orig)) from e
        if files:
            self.conn.execute(model_files.insert(), files)
