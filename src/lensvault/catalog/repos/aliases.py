"""Aliases: where each points now (the one mutable registry table), and every move
(write-once ``alias_moves``)."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

import sqlalchemy as sa

from lensvault.catalog.registry_schema import alias_moves as am
from lensvault.catalog.registry_schema import aliases
from lensvault.catalog.repos._base import Repo, RowT

__all__ = ["AliasRepo"]


@cache
def _pointing_at() -> sa.Select[Any]:
    """Statements read on every lineage or model request, built once (values bound): building a
    statement and its cache key anew on every call cost about as much as running it."""
    return sa.select(aliases).where(aliases.c.name == sa.bindparam("name"),
                                    aliases.c.version == sa.bindparam("version"))


class AliasRepo(Repo):
    def get(self, name: str, alias: str, *, for_update: bool = False) -> RowT | None:
        """Where ``name@alias`` points (``version``, ``updated_at``, ``move_id``), or None;
        ``for_update`` locks the row (PostgreSQL) until the transaction ends."""
        q = sa.select(aliases).where(aliases.c.name == name, aliases.c.alias == alias)
        return self._first(q.with_for_update() if for_update else q)

    def of_model(self, name: str | None = None) -> list[RowT]:
        """Every alias of a model (None: of every model)."""
        q = sa.select(aliases)
        if name is not None:
            q = q.where(aliases.c.name == name)
        return self._all(q)

    def of_models(self, names: Iterable[str]) -> list[RowT]:
        return self._all(sa.select(aliases).where(aliases.c.name.in_(sorted(names))))

    def pointing_at(self, name: str, version: str) -> list[RowT]:
        return list(self.conn.execute(_pointing_at(), {"name": name, "version": version}))

    def moves(self, name: str, alias: str | None = None) -> list[RowT]:
        """Every move of a model's aliases (or of one), in the order they were made."""
        q = sa.select(am).where(am.c.name == name).order_by(am.c.id)
        if alias is not None:
            q = q.where(am.c.alias == alias)
        return self._all(q)

    def names_used(self, name: str) -> list[str]:
        """Every alias the model has ever had, sorted."""
        return sorted({str(r[0]) for r in self.conn.execute(sa.select(am.c.alias).where(am.c.name == name).distinct())})

    def add_move(self, move: dict[str, Any]) -> int:
        """Record a move (with its ``id`` when rebuilding); the move's id."""
        return int(self.conn.execute(am.insert().values(**move).returning(am.c.id)).scalar_one())

    def point(self, name: str, alias: str, version: str, *, at: str, move_id: int, exists: bool) -> None:
        """Make ``name@alias`` point at ``version`` (``exists``: the alias points somewhere already)."""
        if exists:
            self.conn.execute(aliases.update().where(aliases.c.name == name, aliases.c.alias == alias)
                              .values(version=version, updated_at=at, move_id=move_id))
        else:
            self.conn.execute(aliases.insert().values(name=name, alias=alias, version=version, updated_at=at,
                                                      move_id=move_id))
