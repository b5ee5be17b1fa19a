"""The append-only event log."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from lensvault.catalog.repos._base import Repo, RowT
from lensvault.catalog.schema import events

__all__ = ["EventRepo"]

_COLUMNS = ("id", "at", "actor", "action", "subject_kind", "subject", "before", "after")


class EventRepo(Repo):
    def add(self, row: dict[str, Any]) -> int:
        """Append one event; its id."""
        return int(self.conn.execute(events.insert().values(**row).returning(events.c.id)).scalar_one())

    def add_with_ids(self, rows: list[dict[str, Any]]) -> None:
        """Events that already have their ids (catalog rebuild), in batches of 1,000."""
        for i in range(0, len(rows), 1000):
            self.conn.execute(events.insert(), [{c: e.get(c) for c in _COLUMNS} for e in rows[i:i + 1000]])

    def find(self, *, subject: str | None = None, action: str | None = None, since: str | None = None,
             until: str | None = None, last: int | None = None) -> list[RowT]:
        """Oldest first. ``subject`` also matches ``subject@…``; ``action`` may use ``*``;
        ``since``/``until`` compare as text (timestamps are ISO-8601 UTC); ``last``: only the
        newest N of those, read as N rows (the primary key backwards), not the whole log."""
        q = sa.select(events).order_by(events.c.id.desc() if last else events.c.id)
        if subject:
            q = q.where(sa.or_(events.c.subject == subject, events.c.subject.like(f"{subject}@%")))
        if action:
            q = q.where(events.c.action.like(action.replace("*", "%")))
        if since:
            q = q.where(events.c.at >= since)
        if until:
            q = q.where(events.c.at <= until)
        if last:
            return self._all(q.limit(last))[::-1]
        return self._all(q)
