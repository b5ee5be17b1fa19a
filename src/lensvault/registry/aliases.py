"""Aliases: movable names (``production``, ``staging``) on immutable versions.

``aliases`` holds where each alias points now — the one mutable registry table — and
every move is also a write-once ``alias_moves`` row plus an event, all in one
transaction. Two promotions racing are serialized (see ``catalog/locks.py``): both are
recorded, in commit order, each with the version it actually moved the alias from,
and the alias ends on whichever committed last.

Rollback is "undo": replaying the moves of an alias as a stack — a promotion pushes
its version, a rollback pops one — the alias's current version is the top, and
``rollback`` moves it to the entry below. So promote 1.0.0, 1.1.0, 1.2.0 then rollback,
rollback gives 1.1.0, then 1.0.0; a third rollback is refused (no earlier version).
Re-promoting the version an alias already holds is recorded but pushes nothing, so it
never becomes a rollback target of itself.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

from lensvault import ledger
from lensvault.errors import AlreadyExists, InvalidRef, NotFound, UsageError
from lensvault.refs import Ref, validate_name

if TYPE_CHECKING:
    from lensvault.vault import Vault

__all__ = ["AliasMove", "alias_stack", "history", "promote", "rollback"]

_ALIAS_RESERVED = ("latest",)


@dataclass(frozen=True)
class AliasMove:
    id: int
    name: str
    alias: str
    from_version: str | None
    to_version: str
    action: str
    reason: str | None
    actor: str
    at: str
    # Filled by rollback: every version the alias has held (oldest first), and where the
    # next rollback would take it (None: this was the last step back).
    held: tuple[str, ...] = ()
    next_rollback: str | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update({"from": self.from_version, "to": self.to_version, "who": self.actor, "when": self.at,
                  "why": self.reason})
        if self.action != "rollback":
            del d["held"], d["next_rollback"]
        else:
            d["held"] = list(self.held)
        return d


def _moves(conn, name: str, alias: str | None = None) -> list[AliasMove]:
    from lensvault.catalog.repos.aliases import AliasRepo

    return [AliasMove(r.id, r.name, r.alias, r.from_version, r.to_version, r.action, r.reason, r.actor, r.at)
            for r in AliasRepo(conn).moves(name, alias)]


def alias_stack(moves: list[AliasMove]) -> list[str]:
    """The versions an alias can roll back through, oldest first; the last is where it points."""
    stack: list[str] = []
    for m in moves:
        if m.action == "rollback":
            if stack:
                stack.pop()
            if not stack or stack[-1] != m.to_version:
                stack.append(m.to_version)  # defensive: a history written by another tool
        elif not stack or stack[-1] != m.to_version:
            stack.append(m.to_version)
    return stack


def _move(vault: Vault, name: str, alias: str, to_version: str, action: str, reason: str | None, *, expect=None) -> AliasMove:
    """Move ``alias`` inside one transaction; ``expect(conn, current, moves)`` picks or checks the target."""
    from lensvault.catalog.catalog import utcnow
    from lensvault.catalog.locks import lock_name
    from lensvault.catalog.repos.aliases import AliasRepo

    with vault.catalog.begin() as conn:
        lock_name(conn, "alias", name, alias)
        repo = AliasRepo(conn)
        cur = repo.get(name, alias, for_update=True)
        current = cur.version if cur else None
        if expect is not None:
            to_version = expect(conn, current)
        at, who = utcnow(), vault.actor
        move_id = repo.add_move({"name": name, "alias": alias, "from_version": current, "to_version": to_version,
                                 "action": action, "reason": reason, "actor": who, "at": at})
        repo.point(name, alias, to_version, at=at, move_id=move_id, exists=cur is not None)
        vault.catalog.append_event(conn, f"model.{action}", "model", f"{name}@{alias}",
                                   before={"version": current} if current else None,
                                   after={"version": to_version, "reason": reason, "move_id": move_id})
        ledger.record(vault, conn, "alias.move", {"move": {
            "id": move_id, "name": name, "alias": alias, "from_version": current, "to_version": to_version,
            "action": action, "reason": reason, "actor": who, "at": at}}, move=f"aliases/{name}/{alias}")
    return AliasMove(move_id, name, alias, current, to_version, action, reason, who, at)


def _check_alias(alias: str) -> str:
    try:
        r = Ref.parse(f"x@{alias}", kind="model")
    except InvalidRef:
        r = None
    if r is None or r.alias is None or alias in _ALIAS_RESERVED:
        raise UsageError(f"{alias!r} cannot be an alias",
                         fix="an alias is a lower-case word (e.g. production, staging), not a version or 'latest'")
    return alias


def promote(vault: Vault, ref: str, alias: str, *, reason: str | None = None, new: bool = False) -> AliasMove:
    """Point ``alias`` at the version ``ref`` names (NAME@X.Y.Z, or another alias).

    An alias the model has never had needs ``new=True`` (``--new``): a typo such as ``prod``
    beside ``production`` would otherwise create a second alias nobody deploys from.
    """
    from lensvault.catalog.model_refs import resolve_model

    alias = _check_alias(alias)
    r = Ref.parse(ref, kind="model")
    if r.version is None and r.alias is None:
        raise UsageError(f"say which version of {r.name} to promote", where=ref, fix=f"write {r.name}@X.Y.Z")
    with vault.catalog.read() as conn:
        row = resolve_model(conn, r)  # NotFound for a version that does not exist
        if not new:
            _check_known_alias(conn, r.name, alias, ref)

    def target(conn, current: str | None) -> str:
        # Decided under the alias's lock: what it points at now, not what a read before saw.
        if new and current is not None:
            raise AlreadyExists(
                f"{r.name}@{alias} already exists (it points at {current}); --new only creates an alias",
                where=f"{r.name}@{alias}",
                fix=f"to move it, leave out --new: `lensvault model promote {r.name}@{row.version} {alias}`")
        return row.version

    # Versions are never deleted, so the row read here still exists when the move commits.
    return _move(vault, r.name, alias, row.version, "promote", reason, expect=target)


def _check_known_alias(conn, name: str, alias: str, ref: str) -> None:
    import difflib

    from lensvault.catalog.repos.aliases import AliasRepo

    used = AliasRepo(conn).names_used(name)
    if alias in used:
        return
    close = [a for a in used if a.startswith(alias) or alias.startswith(a)]
    close += [a for a in difflib.get_close_matches(alias, used, n=3, cutoff=0.6) if a not in close]
    if close:
        raise UsageError(f"{name} has never had an alias {alias!r}; did you mean {' or '.join(map(repr, close))}?",
                         where=f"{name}@{alias}",
                         fix=f"`lensvault model promote {ref} {close[0]}`, or pass --new to create {alias!r}",
                         needs="new")
    known = f" (its aliases: {', '.join(used)})" if used else ""
    raise UsageError(f"{name} has no alias {alias!r} yet{known}", where=f"{name}@{alias}",
                     fix=f"pass --new to create it: `lensvault model promote {ref} {alias} --new`", needs="new")


def rollback(vault: Vault, name: str, alias: str, *, reason: str | None = None) -> AliasMove:
    """Move ``alias`` back to the version that held it before (see the module docstring)."""
    validate_name(name, "model")
    alias = _check_alias(alias)

    seen: dict = {}

    def target(conn, current):
        if current is None:
            raise NotFound(f"{name} has no alias {alias!r}: nothing to roll back", where=f"{name}@{alias}",
                           fix=f"see `lensvault model history {name}`")
        moves = _moves(conn, name, alias)
        stack = alias_stack(moves)
        if len(stack) < 2:
            raise NotFound(f"{name}@{alias} has no earlier version to roll back to (it has only held {current})",
                           where=f"{name}@{alias}", fix=f"promote another version: `lensvault model promote {name}@X.Y.Z {alias}`")
        seen["held"] = tuple(dict.fromkeys(m.to_version for m in moves))
        seen["next"] = stack[-3] if len(stack) >= 3 else None
        return stack[-2]

    move = _move(vault, name, alias, "", "rollback", reason, expect=target)
    return replace(move, held=seen["held"], next_rollback=seen["next"])


def history(vault: Vault, name: str, alias: str | None = None) -> list[AliasMove]:
    validate_name(name, "model")
    with vault.catalog.read() as conn:
        moves = _moves(conn, name, alias)
        if not moves:
            from lensvault.catalog.repos.models import ModelRepo

            if not ModelRepo(conn).exists(name):
                raise NotFound(f"no model named {name!r}", where=name, fix="see `lensvault model list`")
    return moves
