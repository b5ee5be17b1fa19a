"""Objects that something other than a dataset version keeps alive (run artifacts, model
bundles, configs, predictions): gc unions them with every version's files."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from lensvault.catalog.repos._base import Repo
from lensvault.catalog.schema import object_refs as refs

__all__ = ["ObjectRefRepo"]


class ObjectRefRepo(Repo):
    def add(self, owner_kind: str, owner_id: str, oids: Iterable[str]) -> None:
        rows = [{"owner_kind": owner_kind, "owner_id": owner_id, "oid": o} for o in sorted(set(oids))]
        if rows:
            self.conn.execute(refs.insert(), rows)

    def add_missing(self, owner_kind: str, owner_id: str, oids: Iterable[str | None]) -> None:
        """Like :meth:`add`, skipping refs already there (catalog rebuild replays overlapping records)."""
        for oid in sorted({o for o in oids if o}):
            exists = self._first(sa.select(refs.c.oid).where(refs.c.owner_kind == owner_kind,
                                                             refs.c.owner_id == owner_id, refs.c.oid == oid))
            if exists is None:
                self.conn.execute(refs.insert(), [{"owner_kind": owner_kind, "owner_id": owner_id, "oid": oid}])

    def all(self) -> list[tuple[str, str, str]]:
        """(owner kind, owner id, oid) of every ref."""
        return [(str(k), str(o), str(oid)) for k, o, oid in self.conn.execute(
            sa.select(refs.c.owner_kind, refs.c.owner_id, refs.c.oid))]
