"""The append-only event log."""

from __future__ import annotations

from typing import Any

from lensvault.catalog.repos._base import Repo, RowT

__all__ = ["EventRepo"]

_COLUMNS = ("id", "at", "actor", "action", "subject_kind", "subject", "before", "after")


class EventRepo(Repo):
    def add(self, row: dict[str, Any]) -> int:
        """Append one event; its id."""
        from lensvault.catalog.schema import events

        return int(self._sa.execute(events.insert().values(**row).returning(events.c.id)).scalar_one())

    def add_with_ids(self, rows: list[dict[str, Any]]) -> None:
        """Events that already have their ids (catalog rebuild), in batches of 1,000."""
        from lensvault.catalog.schema import events

        for i in range(0, len(rows), 1000):
            self._sa.execute(events.insert(), [{c: e.get(c) for c in _COLUMNS} for e in rows[i:i + 1000]])

    def find(self, *, subject: str | None = None, action: str | None = None, since: str | None = None,
             until: str | None = None, last: int | None = None) -> list[RowT]:
        """Oldest first. ``subject`` also matches ``subject@…``; ``action`` may use ``*``;
        ``since``/``until`` compare as text (timestamps are ISO-8601 UTC); ``last``: only the
        newest N of those, read as N rows (the primary key backwards), not the whole log."""
        conds: list[str] = []
        params: dict[str, Any] = {}
        if subject:
            conds.append("(subject = :subject OR subject LIKE :subject_at)")
            params.update(subject=subject, subject_at=f"{subject}@%")
        if action:
            conds.append("action LIKE :action")
            params["action"] = action.replace("*", "%")
        if since:
            conds.append("at >= :since")
            params["since"] = since
        if until:
            conds.append("at <= :until")
            params["until"] = until
        where = f" WHERE {' AND '.join(conds)}" if conds else ""
        if last:
            params["last"] = last
            return self._all(f"SELECT * FROM events{where} ORDER BY id DESC LIMIT :last", params)[::-1]
        return self._all(f"SELECT * FROM events{where} ORDER BY id", params)
