"""The Catalog: an engine, the migrations, and the event log every write appends to.

The engine (and SQLAlchemy) is made on first use: opening a SQLite catalog, checking its
migrations and identity, and reading through :meth:`Catalog.query` use the standard library's
``sqlite3`` alone, so read-only commands do not pay for importing SQLAlchemy.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lensvault.errors import CatalogError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from lensvault.catalog.health import Inspection
    from lensvault.catalog.sql import Conn, SqliteReader

__all__ = ["Catalog", "utcnow"]


def utcnow() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Transaction:
    """What one write transaction did besides SQL: events to record, and how to undo files it wrote.

    The ledger (``lensvault.ledger``) writes a transaction's record object, journal entry
    and refs in the store before COMMIT; if the transaction does not commit, ``undo``
    removes them again, so the store never proves a write the catalog refused.
    """

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._undo: list[Callable[[], object]] = []
        self._commit: list[Callable[[], object]] = []

    def on_undo(self, fn: Callable[[], object]) -> None:
        self._undo.append(fn)

    def on_commit(self, fn: Callable[[], object]) -> None:
        """``fn()`` after COMMIT (best effort: what it tidies is found again if it fails)."""
        self._commit.append(fn)

    def committed(self) -> None:
        self._undo.clear()
        while self._commit:
            try:
                self._commit.pop()()
            except OSError:
                pass

    def take_events(self) -> list[dict[str, Any]]:
        events, self.events = self.events, []
        return events

    def undo(self) -> None:
        while self._undo:
            try:
                self._undo.pop()()
            except OSError:
                pass  # best effort: an entry left behind names a record rebuild reports as unproven


_TXN = "lensvault.txn"


class Catalog:
    def __init__(self, url: str, *, create: bool = False, actor: str | Callable[[], str] | None = None) -> None:
        import threading

        self.url = url
        self._create = create
        self._engine: Engine | None = None
        self._engine_lock = threading.Lock()
        self._readers: list[SqliteReader] = []  # idle sqlite3 readers of query()
        self._readers_lock = threading.Lock()
        self._closed = False
        self.catalog_id: str | None = None  # set once opened (open_existing)
        # Set by the vault: called before COMMIT when a transaction appended events that no
        # write path recorded in the store's ledger, so every event is in the store.
        self.before_commit: Callable[[Connection, Transaction], None] | None = None
        # Who the events of this connection are recorded as: given by whoever opened it
        # (the vault: lensvault.identity), or a function that looks it up when the first event
        # is written (a read-only command never runs `git config` for it). A catalog opened
        # without one can read, not write events.
        self._actor = actor

    @property
    def actor(self) -> str | None:
        if callable(self._actor):
            self._actor = self._actor()
        return self._actor

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, made (and SQLAlchemy imported) when something first needs it:
        a write, a read through :meth:`read`, or any use of a PostgreSQL catalog. Made once,
        also when the server's threads ask for it at the same time."""
        engine = self._engine
        if engine is None:
            with self._engine_lock:
                if self._engine is None:
                    from lensvault.catalog.engine import create_engine_for

                    self._engine = create_engine_for(self.url, create=self._create)
                engine = self._engine
        return engine

    @property
    def dialect(self) -> str:
        if self.url.startswith("sqlite"):
            return "sqlite"
        return self.engine.dialect.name

    def close(self) -> None:
        with self._readers_lock:
            readers, self._readers, self._closed = self._readers, [], True
        for reader in readers:
            reader.close()
        if self._engine is not None:
            self._engine.dispose()

    @staticmethod
    def transaction(conn: Connection) -> Transaction | None:
        """The ``Transaction`` of a connection inside ``begin()`` (None outside one)."""
        txn: Transaction | None = conn.info.get(_TXN)
        return txn

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A write transaction (SQLite: BEGIN IMMEDIATE; PostgreSQL: READ COMMITTED)."""

        engine = self.engine  # its errors (no driver, an unknown URL) are the caller's, untranslated
        txn = Transaction()
        try:
            with engine.begin() as conn:
                conn.info[_TXN] = txn
                try:
                    yield conn
                    if txn.events and self.before_commit is not None:
                        self.before_commit(conn, txn)
                finally:
                    conn.info.pop(_TXN, None)
            txn.committed()
        except BaseException as e:
            txn.undo()
            if self._database_error(e):
                err = self._translated(e, "the catalog could not be written",
                                       "check that the database is reachable and not locked by a crashed process")
                if err is not e:
                    raise err from e
            raise

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction through SQLAlchemy (any statement; see :meth:`query` for the
        repositories' reads without SQLAlchemy)."""
        engine = self.engine
        try:
            with engine.connect().execution_options(lv_read=True) as conn:
                yield conn
        except Exception as e:
            if not self._database_error(e):
                raise
            err = self._translated(e, "the catalog could not be read", "check that the database is reachable")
            if err is e:
                raise
            raise err from e

    @contextmanager
    def query(self) -> Iterator[Conn]:
        """A read transaction for the repositories' queries (SQL text, ``catalog/sql.py``): on a
        SQLite file a read-only ``sqlite3`` connection (no SQLAlchemy, no engine), else
        :meth:`read`'s connection. Database failures become the same clear errors as in :meth:`read`."""
        import sqlite3

        from lensvault.catalog.health import sqlite_path
        from lensvault.catalog.sql import SqliteReader

        path = sqlite_path(self.url)
        if path is None:
            with self.read() as conn:
                yield conn
            return
        reader = None
        reusable = False
        try:
            with self._readers_lock:
                reader = self._readers.pop() if self._readers else None
            if reader is None:
                reader = SqliteReader(path)
            reader.begin()
            reusable = True
            yield reader
        except sqlite3.Error as e:
            reusable = False  # a connection that failed is not kept
            err = self._sqlite_error(e)
            if err is e:
                raise
            raise err from e
        finally:
            if reader is not None:
                self._give_back(reader, reusable)

    def _give_back(self, reader: SqliteReader, reusable: bool) -> None:
        """End the reader's transaction and keep it for the next :meth:`query` (at most as
        many as the engine's pool holds), or close it."""
        import sqlite3

        from lensvault.catalog.engine import SQLITE_POOL_SIZE

        try:
            reader.end()
        except sqlite3.Error:
            reusable = False
        with self._readers_lock:
            if reusable and len(self._readers) < SQLITE_POOL_SIZE and not self._closed:
                self._readers.append(reader)
                return
        reader.raw.close()

    def _sqlite_error(self, e: BaseException) -> BaseException:
        """As :meth:`_translated` for the standard library's driver: the database failing becomes
        a clear error; anything else (a constraint, a mistake in a statement) stays what it is."""
        import sqlite3

        from lensvault.catalog.health import translate

        if isinstance(e, sqlite3.IntegrityError):
            return e
        found = translate(e, self._where())
        if found is not None:
            return found
        if isinstance(e, sqlite3.OperationalError):
            return CatalogError(f"the catalog could not be read: {e}", where=self._where(),
                                fix="check that the database is reachable")
        return e

    def _database_error(self, e: BaseException) -> bool:
        """Whether ``e`` is the database failing (not a constraint violation), raised through
        SQLAlchemy or straight from the driver (the bulk metric writes use the driver's own
        executemany)."""
        import sqlalchemy as sa

        if isinstance(e, sa.exc.DBAPIError):
            return not isinstance(e, sa.exc.IntegrityError)
        dbapi = getattr(self.engine.dialect, "loaded_dbapi", None) or getattr(self.engine.dialect, "dbapi", None)
        return (dbapi is not None and isinstance(e, dbapi.Error)
                and not isinstance(e, dbapi.IntegrityError))

    def _translated(self, e: BaseException, what: str, fix: str) -> BaseException:
        import sqlalchemy as sa

        from lensvault.catalog.health import translate

        found = translate(e, self._where())
        if found is not None:
            return found
        dbapi = getattr(self.engine.dialect, "loaded_dbapi", None)
        if isinstance(e, sa.exc.OperationalError) or (dbapi is not None and isinstance(e, dbapi.OperationalError)):
            return CatalogError(f"{what}: {getattr(e, 'orig', e)}", where=self._where(), fix=fix)
        return e

    def _where(self) -> str:
        from lensvault.catalog.health import sqlite_path

        path = sqlite_path(self.url)
        if path is not None:
            return str(path)
        return self.url.split("@")[-1] if "@" in self.url else self.url

    # -- creating and opening ----------------------------------------------------------
    def migrate(self, *, catalog_id: str | None = None) -> list[str]:
        """Apply the steps not applied yet. On a new catalog this creates it, with ``catalog_id``
        (or a new id): only ``init`` and ``catalog rebuild`` do that; opening a vault goes
        through :meth:`open_existing`, which refuses a missing or empty catalog."""
        from lensvault.catalog.migrations import STEPS

        try:
            if self.dialect != "postgresql" and self._inspect().applied >= set(STEPS):
                return []
        except CatalogError:
            pass  # a new SQLite file: created below
        with self.begin() as conn:
            return self.migrate_in(conn, catalog_id=catalog_id)

    def migrate_in(self, conn: Connection, *, catalog_id: str | None = None) -> list[str]:
        """``migrate`` inside the caller's transaction (rebuild builds a catalog in one)."""
        import uuid

        import sqlalchemy as sa

        from lensvault.catalog import schema
        from lensvault.catalog.locks import lock_migrations
        from lensvault.catalog.migrations import create_record_table, load_steps

        lock_migrations(conn)
        create_record_table(conn)
        done = {r[0] for r in conn.execute(sa.select(schema.schema_migrations.c.name))}
        applied_now = []
        for name, upgrade in load_steps():
            if name in done:
                continue
            upgrade(conn)
            conn.execute(schema.schema_migrations.insert().values(name=name, applied_at=utcnow()))
            applied_now.append(name)
        if "m0007_catalog_info" in applied_now:
            # A new catalog gets its id here; an old one (made before ids) gets a new one.
            conn.execute(schema.catalog_info.insert().values(catalog_id=catalog_id or uuid.uuid4().hex,
                                                             created_at=utcnow()))
        return applied_now

    def open_existing(self, expected_id: str | None = None) -> str:
        """Check that this is a whole catalog (and the expected one), apply pending steps; its id.

        Raises CatalogMissing (missing or empty), CatalogDamaged (not a database, truncated,
        tables or identity gone) or CatalogError (another catalog than the vault's).
        """
        from lensvault.catalog.health import check_sqlite_file, problems, sqlite_path
        from lensvault.catalog.migrations import STEPS

        path = sqlite_path(self.url)
        if path is not None:
            check_sqlite_file(path)
        found = self._inspect()
        problem = problems(found, self._where())
        if problem is not None:
            raise problem
        if not found.applied >= set(STEPS):
            self.migrate(catalog_id=expected_id)
            found = self._inspect()
        if expected_id is not None and found.catalog_id != expected_id:
            raise CatalogError(
                f"the catalog at {self._where()} is not this vault's catalog "
                f"(its id is {found.catalog_id}, the vault's is {expected_id})",
                where=self._where(),
                fix="point catalog.url in .lensvault/config.toml at the vault's own catalog, or run "
                    "`lensvault catalog rebuild --force` to rebuild the vault's catalog there",
                foreign_id=found.catalog_id,
            )
        assert found.catalog_id is not None  # problems() refuses a catalog that lost its id; migrate gives one
        return found.catalog_id

    def _inspect(self) -> Inspection:
        from lensvault.catalog.health import inspect

        with self.query() as conn:
            return inspect(conn)

    # -- events -------------------------------------------------------------------------
    def append_event(self, conn: Connection, action: str, subject_kind: str, subject: str, *, before: object = None,
                     after: object = None) -> dict[str, Any]:
        """Append an event; the row as written (with its id), which the ledger also records."""
        from lensvault.catalog.repos.events import EventRepo

        if not self.actor:
            raise CatalogError("the catalog was opened without an acting user, so it cannot record events",
                               where=self._where(), fix="open it through lensvault.open(path, actor=...)")
        row: dict[str, Any] = {
            "at": utcnow(),
            "actor": self.actor,
            "action": action,
            "subject_kind": subject_kind,
            "subject": subject,
            "before": None if before is None else json.dumps(before, sort_keys=True, default=str),
            "after": None if after is None else json.dumps(after, sort_keys=True, default=str),
        }
        row["id"] = EventRepo(conn).add(row)
        txn = self.transaction(conn)
        if txn is not None:
            txn.events.append(row)
        return row

    def add_object_refs(self, conn: Connection, owner_kind: str, owner_id: str, oids: Iterable[str]) -> None:
        from lensvault.catalog.repos.object_refs import ObjectRefRepo

        ObjectRefRepo(conn).add(owner_kind, owner_id, oids)
