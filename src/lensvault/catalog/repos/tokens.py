"""API tokens: made, listed, looked up by id, revoked (``api_tokens``)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from lensvault.catalog.auth_schema import api_tokens as t
from lensvault.catalog.repos._base import Conflict, Repo, RowT

__all__ = ["TokenRepo"]


class TokenRepo(Repo):
    def add(self, row: dict[str, Any]) -> None:
        """A new token; :class:`Conflict` when its name (or id) is taken."""
        try:
            with self.conn.begin_nested():
                self.conn.execute(t.insert().values(**row))
        except sa.exc.IntegrityError as e:
            raise Conflict(str(e.orig), self.by_name(row["name"])) from e

    def get(self, token_id: str) -> RowT | None:
        return self._first(sa.select(t).where(t.c.token_id == token_id))

    def by_name(self, name: str) -> RowT | None:
        return self._first(sa.select(t).where(t.c.name == name))

    def all(self) -> list[RowT]:
        """Every token, revoked ones too, oldest first."""
        return self._all(sa.select(t).order_by(t.c.created_at, t.c.name))

    def revoke(self, token_id: str, *, at: str, by: str) -> bool:
        """Mark a token revoked; False when it was revoked already (the first revoke is kept)."""
        done = self.conn.execute(t.update().where(t.c.token_id == token_id, t.c.revoked_at.is_(None))
                                 .values(revoked_at=at, revoked_by=by))
        return bool(done.rowcount)
