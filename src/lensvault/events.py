"""The append-only audit log: every write to the vault leaves one event.

Events are written by ``Catalog.append_event`` inside the same transaction as
the write they describe, so a write and its event commit or fail together.
"""

from __future__ import annotations

import json

from lensvault.results import ListResult

__all__ = ["EventList", "list_events"]


class EventList(ListResult):
    """``events``: event dicts {id, at, actor, action, subject_kind, subject, before, after}, oldest first."""


def list_events(vault, *, subject=None, action=None, since=None, until=None, limit=None) -> EventList:
    import sqlalchemy as sa

    from lensvault.catalog.schema import events

    q = sa.select(events).order_by(events.c.id)
    if subject:
        # "detector" matches detector@1.0.0 and detector@production too.
        q = q.where(sa.or_(events.c.subject == subject, events.c.subject.like(f"{subject}@%")))
    if action:
        q = q.where(events.c.action.like(action.replace("*", "%")))
    if since:
        q = q.where(events.c.at >= since)
    if until:
        # A bare date means "through the end of that day" (timestamps compare as text).
        q = q.where(events.c.at <= (until + "T23:59:59.999999Z" if len(until) == 10 else until))
    with vault.catalog.read() as conn:
        rows = conn.execute(q).all()
    out = [
        {
            "id": r.id, "at": r.at, "actor": r.actor, "action": r.action, "subject_kind": r.subject_kind,
            "subject": r.subject, "before": json.loads(r.before) if r.before else None,
            "after": json.loads(r.after) if r.after else None,
        }
        for r in rows
    ]
    return EventList(out[-limit:] if limit else out)
