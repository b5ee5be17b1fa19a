"""Dataset versions and the snapshots they bind (write-once; the unique key decides races)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from lensvault.catalog.repos._base import Conflict, Repo, RowT, name_version_statements
from lensvault.catalog.schema import dataset_versions as dv
from lensvault.catalog.schema import snapshots

__all__ = ["DatasetRepo"]


class DatasetRepo(Repo):
    # -- reading
    def get(self, name: str, version: str) -> RowT | None:
        return self.conn.execute(name_version_statements(dv)["get"], {"name": name, "version": version}).first()

    def of_name(self, name: str) -> list[RowT]:
        """Every version of one dataset, in no particular order."""
        return self._all(sa.select(dv).where(dv.c.name == name))

    def all(self) -> list[RowT]:
        return self._all(sa.select(dv))

    def exists(self, name: str) -> bool:
        return self.conn.execute(name_version_statements(dv)["exists"], {"name": name}).first() is not None

    def summaries(self) -> list[RowT]:
        """One row per dataset name: ``name``, ``versions`` (count), ``updated_at`` (newest)."""
        return self._all(sa.select(dv.c.name, sa.func.count().label("versions"),
                                   sa.func.max(dv.c.created_at).label("updated_at")).group_by(dv.c.name))

    def children(self, name: str, version: str) -> list[RowT]:
        """The versions of ``name`` whose parent is ``version``."""
        return self._all(sa.select(dv).where(dv.c.name == name, dv.c.parent == version))

    # -- writing
    def add_snapshot(self, row: dict[str, Any]) -> None:
        """Insert the snapshot row unless it exists; two writers of the same content may race here."""
        if self._first(sa.select(snapshots.c.snapshot_id).where(snapshots.c.snapshot_id == row["snapshot_id"])):
            return
        try:
            with self.conn.begin_nested():
                self.conn.execute(snapshots.insert().values(**row))
        except sa.exc.IntegrityError:
            pass  # the other writer inserted the same content-addressed row: same bytes, same meaning

    def add_version(self, row: dict[str, Any]) -> None:
        """Bind ``name@version``; :class:`Conflict` (``existing``: the row) when it is bound already."""
        try:
            with self.conn.begin_nested():
                self.conn.execute(dv.insert().values(**row))
        except sa.exc.IntegrityError as e:
            existing = self.get(row["name"], row["version"])
            if existing is None:
                raise
            raise Conflict(str(e.orig), existing) from None
