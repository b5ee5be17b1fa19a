"""Dataset versions and the snapshots they bind (write-once; the unique key decides races)."""

from __future__ import annotations

from typing import Any

from lensvault.catalog.repos._base import Conflict, Repo, RowT, name_version_sql

__all__ = ["DatasetRepo"]

_NAME_VERSION = name_version_sql("dataset_versions")


class DatasetRepo(Repo):
    # -- reading
    def get(self, name: str, version: str) -> RowT | None:
        return self._first(_NAME_VERSION["get"], {"name": name, "version": version})

    def of_name(self, name: str) -> list[RowT]:
        """Every version of one dataset, in no particular order."""
        return self._all("SELECT * FROM dataset_versions WHERE name = :name", {"name": name})

    def all(self) -> list[RowT]:
        return self._all("SELECT * FROM dataset_versions")

    def exists(self, name: str) -> bool:
        return self._first(_NAME_VERSION["exists"], {"name": name}) is not None

    def summaries(self) -> list[RowT]:
        """One row per dataset name: ``name``, ``versions`` (count), ``updated_at`` (newest)."""
        return self._all("SELECT name, count(*) AS versions, max(created_at) AS updated_at "
                         "FROM dataset_versions GROUP BY name")

    def children(self, name: str, version: str) -> list[RowT]:
        """The versions of ``name`` whose parent is ``version``."""
        return self._all("SELECT * FROM dataset_versions WHERE name = :name AND parent = :version",
                         {"name": name, "version": version})

    # -- writing
    def add_snapshot(self, row: dict[str, Any]) -> None:
        """Insert the snapshot row unless it exists; two writers of the same content may race here."""
        import sqlalchemy as sa

        from lensvault.catalog.schema import snapshots

        if self._first("SELECT snapshot_id FROM snapshots WHERE snapshot_id = :id", {"id": row["snapshot_id"]}):
            return
        try:
            with self._sa.begin_nested():
                self._sa.execute(snapshots.insert().values(**row))
        except sa.exc.IntegrityError:
            pass  # the other writer inserted the same content-addressed row: same bytes, same meaning

    def add_version(self, row: dict[str, Any]) -> None:
        """Bind ``name@version``; :class:`Conflict` (``existing``: the row) when it is bound already."""
        import sqlalchemy as sa

        from lensvault.catalog.schema import dataset_versions

        try:
            with self._sa.begin_nested():
                self._sa.execute(dataset_versions.insert().values(**row))
        except sa.exc.IntegrityError as e:
            existing = self.get(row["name"], row["version"])
            if existing is None:
                raise
            raise Conflict(str(e.orig), existing) from None
