"""The Catalog: an engine, the migrations, and the event log every write appends to."""

from __future__ import annotations

import getpass
import json
import os
from contextlib import contextmanager
from datetime import datetime, timezone

from lensvault.errors import CatalogError

__all__ = ["Catalog", "actor", "utcnow"]


def utcnow() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def actor() -> str:
    """Who is writing: LENSVAULT_USER if set, else the OS user (read at call time)."""
    user = os.environ.get("LENSVAULT_USER")
    if user:
        return user
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


class Catalog:
    def __init__(self, url: str):
        from lensvault.catalog.engine import create_engine_for

        self.url = url
        self.engine = create_engine_for(url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def begin(self):
        """A write transaction (SQLite: BEGIN IMMEDIATE; PostgreSQL: READ COMMITTED)."""
        import sqlalchemy as sa

        try:
            with self.engine.begin() as conn:
                yield conn
        except sa.exc.OperationalError as e:
            raise CatalogError(
                f"the catalog could not be written: {e.orig}",
                where=self._where(),
                fix="check that the database is reachable and not locked by a crashed process",
            ) from e

    @contextmanager
    def read(self):
        import sqlalchemy as sa

        try:
            with self.engine.connect().execution_options(lv_read=True) as conn:
                yield conn
        except sa.exc.OperationalError as e:
            raise CatalogError(
                f"the catalog could not be read: {e.orig}",
                where=self._where(),
                fix="check that the database is reachable",
            ) from e

    def _where(self) -> str:
        return self.url.split("@")[-1] if "@" in self.url else self.url

    # -- migrations -----------------------------------------------------------------
    def migrate(self) -> list[str]:
        import sqlalchemy as sa

        from lensvault.catalog import schema
        from lensvault.catalog.migrations import load_steps

        applied_now = []
        steps = list(load_steps())
        if self._applied() >= {name for name, _ in steps}:
            return applied_now
        with self.begin() as conn:
            if self.dialect == "postgresql":
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7428001)")
            schema.schema_migrations.create(conn, checkfirst=True)
            done = {r[0] for r in conn.execute(sa.select(schema.schema_migrations.c.name))}
            for name, upgrade in steps:
                if name in done:
                    continue
                upgrade(conn)
                conn.execute(schema.schema_migrations.insert().values(name=name, applied_at=utcnow()))
                applied_now.append(name)
        return applied_now

    def _applied(self) -> set[str]:
        import sqlalchemy as sa

        from lensvault.catalog import schema

        try:
            with self.read() as conn:
                return {r[0] for r in conn.execute(sa.select(schema.schema_migrations.c.name))}
        except (sa.exc.SQLAlchemyError, CatalogError):
            return set()

    # -- events -------------------------------------------------------------------------
    def append_event(self, conn, action: str, subject_kind: str, subject: str, *, before=None, after=None) -> None:
        from lensvault.catalog import schema

        conn.execute(
            schema.events.insert().values(
                at=utcnow(),
                actor=actor(),
                action=action,
                subject_kind=subject_kind,
                subject=subject,
                before=None if before is None else json.dumps(before, sort_keys=True, default=str),
                after=None if after is None else json.dumps(after, sort_keys=True, default=str),
            )
        )

    def add_object_refs(self, conn, owner_kind: str, owner_id: str, oids) -> None:
        from lensvault.catalog import schema

        rows = [{"owner_kind": owner_kind, "owner_id": owner_id, "oid": o} for o in sorted(set(oids))]
        if rows:
            conn.execute(schema.object_refs.insert(), rows)
