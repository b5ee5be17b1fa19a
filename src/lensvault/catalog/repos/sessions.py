"""Browser sessions of the web UI: started, looked up with their token, ended (``api_sessions``)."""

from __future__ import annotations

from lensvault.catalog.repos._base import Repo, RowT

__all__ = ["SessionRepo"]


class SessionRepo(Repo):
    def add(self, session_sha256: str, token_id: str, *, at: str, expires_at: str) -> None:
        from lensvault.catalog.auth_schema import api_sessions as s

        self._sa.execute(s.insert().values(session_sha256=session_sha256, token_id=token_id, created_at=at,
                                           expires_at=expires_at))

    def live(self, session_sha256: str, *, now: str) -> RowT | None:
        """The token row of a session that has not expired and whose token is not revoked."""
        return self._first("SELECT t.* FROM api_sessions s JOIN api_tokens t ON s.token_id = t.token_id "
                           "WHERE s.session_sha256 = :sha AND s.expires_at > :now AND t.revoked_at IS NULL",
                           {"sha": session_sha256, "now": now})

    def remove(self, session_sha256: str) -> None:
        from lensvault.catalog.auth_schema import api_sessions as s

        self._sa.execute(s.delete().where(s.c.session_sha256 == session_sha256))

    def remove_expired(self, *, now: str) -> int:
        from lensvault.catalog.auth_schema import api_sessions as s

        return int(self._sa.execute(s.delete().where(s.c.expires_at <= now)).rowcount or 0)

    def remove_of_token(self, token_id: str) -> int:
        from lensvault.catalog.auth_schema import api_sessions as s

        return int(self._sa.execute(s.delete().where(s.c.token_id == token_id)).rowcount or 0)
