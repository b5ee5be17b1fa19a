"""Ways a catalog gets lost or damaged, on SQLite and on PostgreSQL (real files, real databases)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import sqlalchemy as sa


def _sidecars(db: Path) -> list[Path]:
    return [Path(f"{db}{s}") for s in ("-wal", "-shm", "-journal")]


def sqlite_damage(how: str, db: Path) -> str:
    """Damage the SQLite catalog ``db``; the state it is left in (missing | damaged)."""
    if how == "deleted":
        db.unlink()
        for p in _sidecars(db):
            p.unlink(missing_ok=True)
        return "missing"
    if how == "emptied":
        db.write_bytes(b"")
        for p in _sidecars(db):
            p.unlink(missing_ok=True)
        return "missing"
    if how == "truncated":
        data = db.read_bytes()
        db.write_bytes(data[: len(data) // 2])
        for p in _sidecars(db):
            p.unlink(missing_ok=True)
        return "damaged"
    if how == "garbage":
        db.write_bytes(os.urandom(db.stat().st_size))
        for p in _sidecars(db):
            p.unlink(missing_ok=True)
        return "damaged"
    con = sqlite3.connect(db, isolation_level=None)
    try:
        if how == "table_dropped":
            con.execute("DROP TABLE dataset_versions")
            return "damaged"
        if how == "all_tables_dropped":
            tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                                "AND name NOT LIKE 'sqlite_%'")]
            con.execute("PRAGMA foreign_keys = OFF")
            for t in tables:
                con.execute(f'DROP TABLE "{t}"')
            return "missing"
        if how == "identity_emptied":
            con.execute("DROP TRIGGER catalog_info_no_delete")
            con.execute("DELETE FROM catalog_info")
            return "damaged"
    finally:
        con.close()
    raise ValueError(how)


SQLITE_DAMAGE = ["deleted", "emptied", "truncated", "garbage", "table_dropped", "all_tables_dropped",
                 "identity_emptied"]
PG_DAMAGE = ["database_dropped", "schema_emptied", "table_dropped", "identity_truncated"]


def pg_damage(how: str, url: str, admin_exec) -> str:
    """Damage the PostgreSQL catalog at ``url``; the state it is left in (missing | damaged)."""
    name = url.rsplit("/", 1)[1]
    if how == "database_dropped":
        admin_exec(f"DROP DATABASE {name} WITH (FORCE)")
        return "missing"
    statements = {
        "schema_emptied": ["DROP SCHEMA public CASCADE", "CREATE SCHEMA public"],
        "table_dropped": ["DROP TABLE dataset_versions CASCADE"],
        # TRUNCATE does not fire the write-once triggers (they are row triggers).
        "identity_truncated": ["TRUNCATE catalog_info"],
    }[how]
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as c:
            c.exec_driver_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            for s in statements:
                c.exec_driver_sql(s)
    finally:
        engine.dispose()
    return "missing" if how == "schema_emptied" else "damaged"


def damage(project, how: str, admin_exec=None) -> str:
    if project.catalog_url is None:
        return sqlite_damage(how, project.catalog_file)
    return pg_damage(how, project.catalog_url, admin_exec)


def pg_tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as c:
            return {r[0] for r in c.exec_driver_sql(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
    finally:
        engine.dispose()
