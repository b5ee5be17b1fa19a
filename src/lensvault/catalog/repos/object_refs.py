"""Objects that something other than a dataset version keeps alive (run artifacts, model
bundles, configs, predictions): gc unions them with every version's files."""

from __future__ import annotations

from collections.abc import Iterable

from lensvault.catalog import sql
from lensvault.catalog.repos._base import Repo

__all__ = ["ObjectRefRepo"]


class ObjectRefRepo(Repo):
    def add(self, owner_kind: str, owner_id: str, oids: Iterable[str]) -> None:
        from lensvault.catalog.schema import object_refs

        rows = [{"owner_kind": owner_kind, "owner_id": owner_id, "oid": o} for o in sorted(set(oids))]
        if rows:
            self._sa.execute(object_refs.insert(), rows)

    def add_missing(self, owner_kind: str, owner_id: str, oids: Iterable[str | None]) -> None:
        """Like :meth:`add`, skipping refs already there (catalog rebuild replays overlapping records)."""
        from lensvault.catalog.schema import object_refs

        for oid in sorted({o for o in oids if o}):
            exists = self._first("SELECT oid FROM object_refs WHERE owner_kind = :kind AND owner_id = :owner "
                                 "AND oid = :oid", {"kind": owner_kind, "owner": owner_id, "oid": oid})
            if exists is None:
                self._sa.execute(object_refs.insert(), [{"owner_kind": owner_kind, "owner_id": owner_id, "oid": oid}])

    def all(self) -> list[tuple[str, str, str]]:
        """(owner kind, owner id, oid) of every ref."""
        return [(str(k), str(o), str(oid))
                for k, o, oid in sql.tuples(self.conn, "SELECT owner_kind, owner_id, oid FROM object_refs")]
