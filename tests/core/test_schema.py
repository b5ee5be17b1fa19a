"""The migrations and the live table definitions describe the same catalog, and the
migrations do not depend on the live definitions (a later change to a table must not
change what an old step does)."""

from __future__ import annotations

import ast
from pathlib import Path

import sqlalchemy as sa

import lensvault.catalog.migrations as migrations
from lensvault.catalog import Catalog, auth_schema, registry_schema, runs_schema, schema

_MIGRATIONS = Path(migrations.__file__).parent


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at its top or inside functions."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def test_no_migration_imports_live_definitions_or_domain_code():
    steps = sorted(_MIGRATIONS.glob("m[0-9]*.py"))
    assert [p.stem for p in steps] == migrations.STEPS
    for path in [*steps, _MIGRATIONS / "__init__.py"]:
        ours = {m for m in _imports(path) if m.startswith("lensvault")}
        # The triggers are DDL helpers, not table definitions; every table is written out.
        assert ours <= {"lensvault.catalog.triggers", "lensvault.catalog.triggers.write_once",
                        "lensvault.catalog.triggers.frozen_when_finished"}, (path.name, ours)


def _unqualified(sql: str, schema_name: str | None) -> str:
    """A sequence default names its schema when it is not the default one."""
    return sql.replace(f'"{schema_name}".', "").replace(f"{schema_name}.", "") if schema_name else sql


def _describe(conn, schema_name: str | None) -> dict:
    """Tables, columns (type as the database reports it), keys and indexes, comparable across two creations."""
    insp = sa.inspect(conn)
    out = {}
    for table in sorted(set(insp.get_table_names(schema=schema_name)) - {"sqlite_sequence"}):
        cols = [(c["name"], str(c["type"]), c["nullable"], _unqualified(str(c.get("default")), schema_name))
                for c in insp.get_columns(table, schema=schema_name)]
        pk = insp.get_pk_constraint(table, schema=schema_name)["constrained_columns"]
        fks = sorted((tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
                     for f in insp.get_foreign_keys(table, schema=schema_name))
        uniques = sorted((u["name"], tuple(u["column_names"]))
                         for u in insp.get_unique_constraints(table, schema=schema_name))
        indexes = sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                         for i in insp.get_indexes(table, schema=schema_name)
                         if not i["name"].startswith("sqlite_autoindex"))
        out[table] = {"columns": cols, "pk": pk, "fks": fks, "uniques": uniques, "indexes": indexes}
    return out


def _migrated_and_live(url_migrated: str, url_live: str, live_schema: str | None = None):
    cat = Catalog(url_migrated, create=True)
    try:
        cat.migrate()
        with cat.read() as conn:
            migrated = _describe(conn, None)
    finally:
        cat.close()
    engine = sa.create_engine(url_live)
    try:
        with engine.begin() as conn:
            if live_schema:
                conn.exec_driver_sql(f"CREATE SCHEMA {live_schema}")
                conn.exec_driver_sql(f"SET search_path TO {live_schema}")
            schema.metadata.create_all(conn)
        with engine.connect() as conn:
            live = _describe(conn, live_schema)
    finally:
        engine.dispose()
    return migrated, live


def _assert_same(migrated: dict, live: dict) -> None:
    assert sorted(migrated) == sorted(live)
    for table in live:
        assert migrated[table] == live[table], table


def test_migrations_make_what_the_live_definitions_describe_sqlite(tmp_path):
    migrated, live = _migrated_and_live(f"sqlite:///{tmp_path / 'migrated.db'}", f"sqlite:///{tmp_path / 'live.db'}")
    assert "run_latest_metrics" in live and "ix_runs_status" in {i[0] for i in live["runs"]["indexes"]}
    _assert_same(migrated, live)


def test_migrations_make_what_the_live_definitions_describe_postgresql(pg_url):
    from lensvault.catalog.engine import normalize_url

    url = normalize_url(pg_url)
    migrated, live = _migrated_and_live(url, url, live_schema="live_definitions")
    _assert_same(migrated, live)


def test_a_step_keeps_its_own_tables_when_a_live_table_changes(tmp_path, monkeypatch):
    """A column added to the live definitions (without a step) reaches no new catalog."""
    copies = sa.MetaData()
    for module in (schema, runs_schema, registry_schema, auth_schema):
        for attr, table in list(vars(module).items()):
            if isinstance(table, sa.Table):
                changed = table.to_metadata(copies)
                changed.append_column(sa.Column("added_later", sa.Text))
                monkeypatch.setattr(module, attr, changed)
    cat = Catalog(f"sqlite:///{tmp_path / 'c.db'}", create=True)
    try:
        cat.migrate()
        with cat.read() as conn:
            insp = sa.inspect(conn)
            added = [t for t in insp.get_table_names() if "added_later" in {c["name"] for c in insp.get_columns(t)}]
    finally:
        cat.close()
    assert added == []


def test_every_write_once_table_has_its_triggers(tmp_path):
    cat = Catalog(f"sqlite:///{tmp_path / 'c.db'}", create=True)
    try:
        cat.migrate()
        with cat.read() as conn:
            triggers = {r[0] for r in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    finally:
        cat.close()
    for table in ("snapshots", "dataset_versions", "events", "configs", "run_params", "run_metrics", "run_artifacts",
                  "evaluations", "model_versions", "model_files", "alias_moves", "catalog_info"):
        assert {f"{table}_no_update", f"{table}_no_delete"} <= triggers, table
    assert {"runs_frozen", "runs_no_delete"} <= triggers
