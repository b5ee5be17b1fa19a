"""Registered configs (write-once)."""

from __future__ import annotations

from functools import cache
from typing import Any

import sqlalchemy as sa

from lensvault.catalog.repos._base import Repo, RowT
from lensvault.catalog.runs_schema import configs as t

__all__ = ["ConfigRepo"]


@cache
def _by_id() -> sa.Select[Any]:
    """Statements read on every lineage or model request, built once (values bound): building a
    statement and its cache key anew on every call cost about as much as running it."""
    return sa.select(t).where(t.c.config_id == sa.bindparam("config_id"))


class ConfigRepo(Repo):
    def get(self, config_id: str) -> RowT | None:
        return self.conn.execute(_by_id(), {"config_id": config_id}).first()

    def exists(self, config_id: str) -> bool:
        return self._first(sa.select(t.c.config_id).where(t.c.config_id == config_id)) is not None

    def ids(self) -> list[str]:
        return [str(r[0]) for r in self.conn.execute(sa.select(t.c.config_id))]

    def content(self, config_id: str) -> str | None:
        """The canonical JSON of the config's values."""
        row = self._first(sa.select(t.c.content).where(t.c.config_id == config_id))
        return str(row.content) if row else None

    def all(self) -> list[RowT]:
        """Oldest first."""
        return self._all(sa.select(t).order_by(t.c.created_at, t.c.config_id))

    def add(self, row: dict[str, Any]) -> None:
        self.conn.execute(t.insert().values(**row))
