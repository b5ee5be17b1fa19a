"""Human output of ``lensvault token`` (create, list, revoke) and ``lensvault serve``."""

from __future__ import annotations

from lensvault.render._text import line, print_table, table

__all__ = ["created", "revoked", "served", "tokens"]


def created(r, out) -> None:
    i = r.info
    line(out, f"Created token {i.name} ({i.role}) acting as {i.user}, id {i.token_id}")
    line(out, f"  {r.token}")
    line(out, "  store this token now: only its hash is kept, it cannot be shown again")


def tokens(items, out) -> None:
    if not items:
        line(out, "No tokens. Make one with `lensvault token create NAME --role read|write|admin`.")
        return
    t = table("name", "id", "role", "user", "created", "state")
    for i in items:
        t.add_row(i.name, i.token_id, i.role, i.user, i.created_at[:19],
                  "active" if i.active else f"revoked {i.revoked_at[:19]} by {i.revoked_by}")
    print_table(out, t)


def revoked(r, out) -> None:
    i = r.info
    if r.already:
        line(out, f"Token {i.name} was revoked already ({i.revoked_at} by {i.revoked_by})")
    else:
        line(out, f"Revoked token {i.name} ({i.token_id}); requests with it now get 401")


def served(r, out) -> None:
    line(out, f"Stopped serving {r.vault} at {r.url}")
