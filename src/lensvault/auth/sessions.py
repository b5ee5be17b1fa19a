"""Browser sessions: what the web UI's cookie holds instead of the token itself.

Logging in with a token starts a session: a random id (32 bytes) goes into the cookie, and
the catalog keeps only its sha256, the token it stands for and when it ends. So the token
never sits in the browser, a copy of the catalog gives nobody a usable session, any server
process finds the session in the shared catalog (no process keeps state), and a session is
checked with its token on every request: revoking the token ends all its sessions at once.
Logging out removes the session; expired ones are removed by the next login.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from lensvault.auth.tokens import Principal, authenticate

if TYPE_CHECKING:
    from lensvault.vault import Vault

__all__ = ["SESSION_HOURS", "Session", "end_session", "session_principal", "start_session"]

SESSION_HOURS = 12  # a working day: then the browser asks for the token again
PREFIX = "lvs_"
_SESSION = re.compile(r"lvs_([A-Za-z0-9_-]{43})")


@dataclass(frozen=True)
class Session:
    """A session just started: ``value`` goes into the cookie (and nowhere else)."""

    value: str
    principal: Principal
    expires_at: str
    max_age: int


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # the catalog's time format: compares as text


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def start_session(vault: Vault, token: str) -> Session | None:
    """A new session for a valid, live ``token``; None when the token is not one."""
    from lensvault.catalog.repos import SessionRepo

    principal = authenticate(vault, token)
    if principal is None or principal.token_id is None:
        return None
    value = PREFIX + secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    expires = _stamp(now + timedelta(hours=SESSION_HOURS))
    with vault.catalog.begin() as conn:
        repo = SessionRepo(conn)
        repo.remove_expired(now=_stamp(now))
        repo.add(_digest(value), principal.token_id, at=_stamp(now), expires_at=expires)
    return Session(value, principal, expires, SESSION_HOURS * 3600)


def session_principal(vault: Vault, value: str) -> Principal | None:
    """Who a session cookie acts as; None when it is malformed, unknown, expired, logged out,
    or its token was revoked."""
    from lensvault.catalog.repos import SessionRepo

    if not isinstance(value, str) or not _SESSION.fullmatch(value):
        return None
    with vault.catalog.read() as conn:
        row = SessionRepo(conn).live(_digest(value), now=_stamp(datetime.now(UTC)))
    return None if row is None else Principal(row.user, row.role, row.token_id, row.name)


def end_session(vault: Vault, value: str) -> None:
    """Log out: the session is gone, in every server process."""
    from lensvault.catalog.repos import SessionRepo

    if isinstance(value, str) and _SESSION.fullmatch(value):
        with vault.catalog.begin() as conn:
            SessionRepo(conn).remove(_digest(value))
