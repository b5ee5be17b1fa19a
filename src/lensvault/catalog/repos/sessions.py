"""Browser sessions of the web UI: started, looked up with their token, ended (``api_sessions``)."""

from __future__ import annotations

import sqlalchemy as sa

from lensvault.catalog.auth_schema import api_sessions as s
from lensvault.catalog.auth_schema import api_tokens as t
from lensvault.catalog.repos._base import Repo, RowT

__all__ = ["SessionRepo"]


class SessionRepo(Repo):
    def add(self, session_sha256: str, token_id: str, *, at: str, expires_at: str) -> None:
        self.conn.execute(s.insert().values(session_sha256=session_sha256, token_id=token_id, created_at=at,
                                            expires_at=expires_at))

    def live(self, session_sha256: str, *, now: str) -> RowT | None:
        """The token row of a session that has not expired and whose token is not revoked."""
        return self._first(sa.select(t).select_from(s.join(t, s.c.token_id == t.c.token_id))
                           .where(s.c.session_sha256 == session_sha256, s.c.expires_at > now,
                                  t.c.revoked_at.is_(None)))

    def remove(self, session_sha256: str) -> None:
        self.conn.execute(s.delete().where(s.c.session_sha256 == session_sha256))

    def remove_expired(self, *, now: str) -> int:
        return int(self.conn.execute(s.delete().where(s.c.expires_at <= now)).rowcount or 0)

    def remove_of_token(self, token_id: str) -> int:
        return int(self.conn.execute(s.delete().where(s.c.token_id == token_id)).rowcount or 0)
