"""Registered configs (write-once)."""

from __future__ import annotations

from typing import Any

from lensvault.catalog import sql
from lensvault.catalog.repos._base import Repo, RowT

__all__ = ["ConfigRepo"]


class ConfigRepo(Repo):
    def get(self, config_id: str) -> RowT | None:
        return self._first("SELECT * FROM configs WHERE config_id = :id", {"id": config_id})

    def exists(self, config_id: str) -> bool:
        return self._first("SELECT config_id FROM configs WHERE config_id = :id", {"id": config_id}) is not None

    def ids(self) -> list[str]:
        return [str(v) for v in sql.values(self.conn, "SELECT config_id FROM configs")]

    def content(self, config_id: str) -> str | None:
        """The canonical JSON of the config's values."""
        row = self._first("SELECT content FROM configs WHERE config_id = :id", {"id": config_id})
        return str(row.content) if row else None

    def all(self) -> list[RowT]:
        """Oldest first."""
        return self._all("SELECT * FROM configs ORDER BY created_at, config_id")

    def add(self, row: dict[str, Any]) -> None:
        from lensvault.catalog.runs_schema import configs

        self._sa.execute(configs.insert().values(**row))
