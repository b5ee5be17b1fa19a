"""The append-only audit log: every write to the vault leaves one event.

Events are written by ``Catalog.append_event`` inside the same transaction as
the write they describe, so a write and its event commit or fail together.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from lensvault.results import ListResult

if TYPE_CHECKING:
    from lensvault.vault import Vault

__all__ = ["EventList", "list_events"]


class EventList(ListResult):
    """``events``: event dicts {id, at, actor, action, subject_kind, subject, before, after}, oldest first."""


def list_events(vault: Vault, *, subject=None, action=None, since=None, until=None, limit=None) -> EventList:
    from lensvault.catalog.repos.events import EventRepo

    # A bare date means "through the end of that day" (timestamps compare as text).
    if until and len(until) == 10:
        until += "T23:59:59.999999Z"
    with vault.catalog.query() as conn:
        rows = EventRepo(conn).find(subject=subject, action=action, since=since, until=until, last=limit or None)
    out = [
        {
            "id": r.id, "at": r.at, "actor": r.actor, "action": r.action, "subject_kind": r.subject_kind,
            "subject": r.subject, "before": json.loads(r.before) if r.before else None,
            "after": json.loads(r.after) if r.after else None,
        }
        for r in rows
    ]
    return EventList(out)
