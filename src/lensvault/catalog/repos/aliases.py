"""Aliases: where each points now (the one mutable registry table), and every move
(write-once ``alias_moves``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lensvault.catalog import sql
from lensvault.catalog.repos._base import Repo, RowT

__all__ = ["AliasRepo"]


class AliasRepo(Repo):
    def get(self, name: str, alias: str, *, for_update: bool = False) -> RowT | None:
        """Where ``name@alias`` points (``version``, ``updated_at``, ``move_id``), or None;
        ``for_update`` locks the row (PostgreSQL) until the transaction ends."""
        q = "SELECT * FROM aliases WHERE name = :name AND alias = :alias"
        if for_update and self._sa.dialect.name == "postgresql":
            q += " FOR UPDATE"  # SQLite has no row locks: its writers hold the database's (BEGIN IMMEDIATE)
        return self._first(q, {"name": name, "alias": alias})

    def of_model(self, name: str | None = None) -> list[RowT]:
        """Every alias of a model (None: of every model)."""
        if name is None:
            return self._all("SELECT * FROM aliases")
        return self._all("SELECT * FROM aliases WHERE name = :name", {"name": name})

    def of_models(self, names: Iterable[str]) -> list[RowT]:
        return self._all("SELECT * FROM aliases WHERE name IN (:names)", {"names": sorted(names)})

    def pointing_at(self, name: str, version: str) -> list[RowT]:
        return self._all("SELECT * FROM aliases WHERE name = :name AND version = :version",
                         {"name": name, "version": version})

    def moves(self, name: str, alias: str | None = None) -> list[RowT]:
        """Every move of a model's aliases (or of one), in the order they were made."""
        if alias is None:
            return self._all("SELECT * FROM alias_moves WHERE name = :name ORDER BY id", {"name": name})
        return self._all("SELECT * FROM alias_moves WHERE name = :name AND alias = :alias ORDER BY id",
                         {"name": name, "alias": alias})

    def names_used(self, name: str) -> list[str]:
        """Every alias the model has ever had, sorted."""
        return sorted({str(v) for v in sql.values(self.conn, "SELECT DISTINCT alias FROM alias_moves WHERE name = :name",
                                                   {"name": name})})

    def add_move(self, move: dict[str, Any]) -> int:
        """Record a move (with its ``id`` when rebuilding); the move's id."""
        from lensvault.catalog.registry_schema import alias_moves

        return int(self._sa.execute(alias_moves.insert().values(**move).returning(alias_moves.c.id)).scalar_one())

    def point(self, name: str, alias: str, version: str, *, at: str, move_id: int, exists: bool) -> None:
        """Make ``name@alias`` point at ``version`` (``exists``: the alias points somewhere already)."""
        from lensvault.catalog.registry_schema import aliases

        if exists:
            self._sa.execute(aliases.update().where(aliases.c.name == name, aliases.c.alias == alias)
                             .values(version=version, updated_at=at, move_id=move_id))
        else:
            self._sa.execute(aliases.insert().values(name=name, alias=alias, version=version, updated_at=at,
                                                     move_id=move_id))
