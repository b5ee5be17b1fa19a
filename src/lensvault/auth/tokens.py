"""API tokens: a name, the user every write made with it is recorded as, and a role.

A token reads ``lvt_<id>_<secret>``. The id finds the row; only the sha256 of the secret is
stored, so a copy of the catalog gives nobody a usable token. The secret is 32 random bytes,
so a plain hash is enough (a slow password hash protects guessable secrets, which these are
not), and the comparison is constant-time.

Roles are ordered: ``read`` < ``write`` (promote, rollback) < ``admin`` (gc). Making and
revoking a token are ledger records (``token.create`` with the row, hash included;
``token.revoke``), like every other catalog write, so ``catalog rebuild`` brings back every
token and every revocation. They are records of this catalog only (``ledger.LOCAL_KINDS``):
never pushed to a remote, never taken from one — a token opens one vault's server.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lensvault.errors import AlreadyExists, NotFound, UsageError
from lensvault.results import ListResult

if TYPE_CHECKING:
    from lensvault.vault import Vault

__all__ = ["ROLES", "Principal", "TokenCreated", "TokenInfo", "TokenList", "TokenRevoked", "authenticate",
           "create_token", "list_tokens", "revoke_token", "role_allows"]

ROLES = ("read", "write", "admin")
PREFIX = "lvt_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
_TOKEN = re.compile(r"lvt_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")


def role_allows(role: str, needed: str) -> bool:
    """True when ``role`` includes what ``needed`` may do."""
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class TokenInfo:
    """A token as ``token list`` shows it (never its secret)."""

    token_id: str
    name: str
    user: str
    role: str
    created_at: str
    created_by: str
    revoked_at: str | None = None
    revoked_by: str | None = None

    @classmethod
    def from_row(cls, r) -> TokenInfo:
        return cls(r.token_id, r.name, r.user, r.role, r.created_at, r.created_by, r.revoked_at, r.revoked_by)

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_dict(self) -> dict:
        return {"token_id": self.token_id, "name": self.name, "user": self.user, "role": self.role,
                "created_at": self.created_at, "created_by": self.created_by, "active": self.active,
                "revoked_at": self.revoked_at, "revoked_by": self.revoked_by}


@dataclass(frozen=True)
class TokenCreated:
    """``token create``: the token, with its secret (shown this once)."""

    info: TokenInfo
    token: str

    def to_dict(self) -> dict:
        return {**self.info.to_dict(), "token": self.token,
                "note": "store this token now: only its hash is kept, it cannot be shown again"}


@dataclass(frozen=True)
class TokenRevoked:
    """``token revoke``: the token as it is now; ``already`` when it had been revoked before."""

    info: TokenInfo
    already: bool = False

    def to_dict(self) -> dict:
        return {**self.info.to_dict(), "already_revoked": self.already}


class TokenList(ListResult):
    """``token list``: every ``TokenInfo``, revoked ones too, oldest first."""


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: the token's user and role (``token_id`` None: anonymous reader)."""

    user: str
    role: str
    token_id: str | None = None
    token_name: str | None = None

    def may(self, needed: str) -> bool:
        return role_allows(self.role, needed)

    def to_dict(self) -> dict:
        return {"user": self.user, "role": self.role, "token_id": self.token_id, "token_name": self.token_name}


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise UsageError(f"{name!r} is not a token name", where="NAME",
                         fix="use letters, digits, '.', '_', '@' or '-' (at most 100 characters)")
    return name


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise UsageError(f"{role!r} is not a role", where="--role", fix=f"choose one of {', '.join(ROLES)}")
    return role


def create_token(vault: Vault, name: str, *, role: str, user: str | None = None) -> TokenCreated:
    """Make a token NAME acting as ``user`` (default: NAME) with ``role``; recorded as an event."""
    from lensvault import ledger
    from lensvault.catalog.catalog import utcnow
    from lensvault.catalog.repos import Conflict, TokenRepo
    from lensvault.identity import check_actor

    name, role = _check_name(name), _check_role(role)
    user = check_actor(user if user is not None else name)
    token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    row = {"token_id": token_id, "name": name, "user": user, "role": role, "secret_sha256": _digest(secret),
           "created_at": utcnow(), "created_by": vault.actor}
    with vault.catalog.begin() as conn:
        try:
            TokenRepo(conn).add(row)
        except Conflict as e:
            raise AlreadyExists(f"a token named {name!r} exists already (names stay taken, revoked or not)",
                                where=name, fix="choose another name; to retire the old token: "
                                                f"`lensvault token revoke {name}`") from e
        vault.catalog.append_event(conn, "token.create", "token", name,
                                   after={"token_id": token_id, "user": user, "role": role})
        ledger.record(vault, conn, "token.create", {"row": row})
    return TokenCreated(TokenInfo.from_row(_Row(row)), f"{PREFIX}{token_id}_{secret}")


class _Row:
    def __init__(self, row: dict):
        self.__dict__.update({"revoked_at": None, "revoked_by": None, **row})


def list_tokens(vault: Vault) -> TokenList:
    from lensvault.catalog.repos import TokenRepo

    with vault.catalog.read() as conn:
        return TokenList(TokenInfo.from_row(r) for r in TokenRepo(conn).all())


def revoke_token(vault: Vault, name: str) -> TokenRevoked:
    """Revoke token NAME (its id works too); every later request with it gets 401."""
    from lensvault import ledger
    from lensvault.catalog.catalog import utcnow
    from lensvault.catalog.repos import SessionRepo, TokenRepo

    with vault.catalog.begin() as conn:
        repo = TokenRepo(conn)
        row = repo.by_name(name) or repo.get(name)
        if row is None:
            raise NotFound(f"no token named {name!r}", where=name, fix="see `lensvault token list`")
        if row.revoked_at is not None:
            return TokenRevoked(TokenInfo.from_row(row), already=True)
        at = utcnow()
        repo.revoke(row.token_id, at=at, by=vault.actor)
        SessionRepo(conn).remove_of_token(row.token_id)  # its browser sessions end with it
        vault.catalog.append_event(conn, "token.revoke", "token", row.name, before={"token_id": row.token_id})
        ledger.record(vault, conn, "token.revoke", {"token_id": row.token_id, "at": at, "by": vault.actor})
        return TokenRevoked(TokenInfo.from_row(repo.get(row.token_id)))


def authenticate(vault: Vault, token: str) -> Principal | None:
    """The principal of a presented token; None when it is malformed, unknown, wrong or revoked
    (the caller answers 401 to all alike: which one it was is nobody's business)."""
    from lensvault.catalog.repos import TokenRepo

    found = _TOKEN.fullmatch(token) if isinstance(token, str) else None
    if not found:
        return None
    token_id, secret = found.groups()
    with vault.catalog.read() as conn:
        row = TokenRepo(conn).get(token_id)
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.secret_sha256, _digest(secret)):
        return None
    return Principal(row.user, row.role, row.token_id, row.name)
