"""API tokens: made, listed, looked up by id, revoked (``api_tokens``)."""

from __future__ import annotations

from typing import Any

from lensvault.catalog.repos._base import Conflict, Repo, RowT

__all__ = ["TokenRepo"]


class TokenRepo(Repo):
    def add(self, row: dict[str, Any]) -> None:
        """A new token; :class:`Conflict` when its name (or id) is taken."""
        import sqlalchemy as sa

        from lensvault.catalog.auth_schema import api_tokens

        try:
            with self._sa.begin_nested():
                self._sa.execute(api_tokens.insert().values(**row))
        except sa.exc.IntegrityError as e:
            raise Conflict(str(e.orig), self.by_name(row["name"])) from e

    def get(self, token_id: str) -> RowT | None:
        return self._first("SELECT * FROM api_tokens WHERE token_id = :id", {"id": token_id})

    def by_name(self, name: str) -> RowT | None:
        return self._first("SELECT * FROM api_tokens WHERE name = :name", {"name": name})

    def all(self) -> list[RowT]:
        """Every token, revoked ones too, oldest first."""
        return self._all("SELECT * FROM api_tokens ORDER BY created_at, name")

    def revoke(self, token_id: str, *, at: str, by: str) -> bool:
        """Mark a token revoked; False when it was revoked already (the first revoke is kept)."""
        from lensvault.catalog.auth_schema import api_tokens as t

        done = self._sa.execute(t.update().where(t.c.token_id == token_id, t.c.revoked_at.is_(None))
                                .values(revoked_at=at, revoked_by=by))
        return bool(done.rowcount)
