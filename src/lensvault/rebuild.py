"""``lensvault catalog rebuild``: recreate a lost or damaged catalog from the store.

Sources (see ``store_facts``): the catalog's ledger in the store — one record object per
catalog write, listed by its journal — and the manifest files in ``data/manifests/`` whose
bytes are stored manifest objects. Records are replayed in journal order into a new
catalog that keeps the old catalog's id, with the rows they recorded (events and alias
moves keep their ids), so every listing reads as before. A version proven only by its
manifest file (written before the ledger existed, or whose record was lost) is restored
from the manifest, with a reconstructed event marked as such.

Never in place: SQLite is rebuilt into a new file that then replaces the old one (which is
kept beside it as ``catalog.db.replaced-…``); PostgreSQL is rebuilt in one transaction
that first moves the old tables into a schema ``lensvault_replaced_…``. A catalog that is
whole (or damaged but present) is only replaced with ``force``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from lensvault.errors import AlreadyExists, CatalogDamaged, CatalogError, CatalogMissing, StorageError
from lensvault.progress import NO_PROGRESS

__all__ = ["RebuildReport", "rebuild_catalog"]

_OPEN_STATES = ("reserved", "running")


@dataclass
class RebuildReport:
    catalog: str
    catalog_id: str
    previous: str  # what was there: missing | empty | damaged | whole
    restored: dict[str, int] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)
    unproven: list[dict] = field(default_factory=list)
    kept_previous: str | None = None

    def count(self, kind: str, n: int = 1) -> None:
        self.restored[kind] = self.restored.get(kind, 0) + n

    def note(self, what: str, where: str, problem: str) -> None:
        self.unproven.append({"what": what, "where": where, "problem": problem})

    def to_dict(self) -> dict:
        return {"catalog": self.catalog, "catalog_id": self.catalog_id, "previous": self.previous,
                "restored": dict(sorted(self.restored.items())), "sources": self.sources,
                "unproven": self.unproven, "kept_previous": self.kept_previous}


def rebuild_catalog(vault, *, force: bool = False, progress=NO_PROGRESS) -> RebuildReport:
    import uuid

    from lensvault.catalog.engine import normalize_url
    from lensvault.catalog.health import sqlite_path
    from lensvault.store_facts import read_facts

    url = normalize_url(vault.config.catalog_url, base=vault.root)
    previous, detail = _state(vault, url)
    if previous in ("whole", "damaged", "foreign") and not force:
        raise AlreadyExists(
            f"the catalog is not empty ({detail}); rebuilding would replace it",
            where=url.split("@")[-1],
            fix="pass --force to rebuild it from the store anyway (the current catalog is kept beside the new one)",
        )
    if "catalog" in vault.__dict__:  # the vault's own handle on the old catalog
        vault.catalog.close()
        del vault.__dict__["catalog"]
    cid = vault.config.catalog_id or uuid.uuid4().hex
    facts = read_facts(vault, progress=progress)
    report = RebuildReport(catalog=url.split("@")[-1], catalog_id=cid, previous=previous, unproven=list(facts.unproven),
                           sources={"ledger_records": len(facts.entries),
                                    "manifest_files": sum("data/manifests" in v.sources for v in facts.versions.values())})
    path = sqlite_path(url)
    if path is not None:
        try:
            report.kept_previous = _rebuild_sqlite(path, cid, facts, report, progress)
        except OSError as e:
            if isinstance(e, StorageError):
                raise
            from lensvault.store.linking import storage_error

            raise storage_error(e, str(path)) from e
    else:
        report.kept_previous = _rebuild_postgres(url, cid, facts, report, progress)
    if vault.config.catalog_id is None:
        from dataclasses import replace

        vault.config = replace(vault.config, catalog_id=cid)
        vault.config.write(vault.dir / "config.toml")
    with vault.catalog.begin() as conn:
        vault.catalog.append_event(conn, "catalog.rebuild", "catalog", cid, after={
            "previous": previous, "restored": report.restored, "unproven": len(report.unproven),
            "kept_previous": report.kept_previous})
    return report


def _state(vault, url: str) -> tuple[str, str]:
    """What is there now: missing | empty | damaged | foreign | whole, and a few words on it."""
    from lensvault.catalog import Catalog

    try:
        cat = Catalog(url)
    except CatalogError as e:
        return "damaged", e.what
    try:
        cat.open_existing(vault.config.catalog_id)
        with cat.read() as conn:
            counts = {t: conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar()
                      for t in ("dataset_versions", "runs", "model_versions", "events")}
        return "whole", ", ".join(f"{n} {t}" for t, n in counts.items())
    except CatalogMissing as e:
        return e.details.get("state", "missing"), e.what
    except CatalogDamaged as e:
        return "damaged", e.what
    except CatalogError as e:
        if "foreign_id" in e.details:
            return "foreign", e.what
        raise
    finally:
        cat.close()


# -- building --------------------------------------------------------------------------------


def _stamp() -> str:
    """A name part for the kept catalog: UTC time to the microsecond (two rebuilds never share one)."""
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")


def _rebuild_sqlite(path: Path, cid: str, facts, report: RebuildReport, progress) -> str | None:
    from lensvault.catalog import Catalog

    tmp = path.with_name(f".{path.name}.rebuild-{os.getpid()}")
    for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm"), Path(f"{tmp}-journal")):
        p.unlink(missing_ok=True)
    new = Catalog(f"sqlite:///{tmp}", create=True)
    try:
        with new.begin() as conn:
            new.migrate_in(conn, catalog_id=cid)
            _replay(conn, facts, report, progress)
        # One self-contained file: no WAL beside it when it is renamed into place.
        raw = new.engine.raw_connection()
        try:
            raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()
        new.close()
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        kept = None
        if path.exists() and path.stat().st_size > 0:
            kept = path.with_name(f"{path.name}.replaced-{_stamp()}")
            os.link(path, kept)  # the old catalog stays whole under the new name
            for suffix in ("-wal", "-shm"):
                side = Path(f"{path}{suffix}")
                if side.exists():
                    os.replace(side, f"{kept}{suffix}")
        else:
            for suffix in ("-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        # A stale -wal beside the new file would be replayed into it: they went above.
        for suffix in ("-wal", "-shm"):
            Path(f"{tmp}{suffix}").unlink(missing_ok=True)
        os.replace(tmp, path)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return str(kept) if kept else None
    except BaseException:
        new.close()
        for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm"), Path(f"{tmp}-journal")):
            p.unlink(missing_ok=True)
        raise


def _rebuild_postgres(url: str, cid: str, facts, report: RebuildReport, progress) -> str | None:
    from lensvault.catalog import Catalog
    from lensvault.catalog.migrations import STEPS, tables_of

    cat = Catalog(url)
    try:
        with cat.begin() as conn:
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7428001)")
            ours = tables_of(STEPS) | {"schema_migrations"}
            present = {r[0] for r in conn.exec_driver_sql(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")} & ours
            kept = None
            if present:
                # DDL is transactional here: other sessions see the old catalog or the new one.
                kept = f"lensvault_replaced_{_stamp().lower()}"
                conn.exec_driver_sql(f'CREATE SCHEMA "{kept}"')
                for t in sorted(present):
                    conn.exec_driver_sql(f'ALTER TABLE "{t}" SET SCHEMA "{kept}"')
            cat.migrate_in(conn, catalog_id=cid)
            _replay(conn, facts, report, progress)
            for table in ("events", "alias_moves"):
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"COALESCE((SELECT max(id) FROM {table}), 0) + 1, false)")
        return f"schema {kept}" if kept else None
    finally:
        cat.close()


# -- replaying -------------------------------------------------------------------------------


def _replay(conn, facts, report: RebuildReport, progress) -> None:
    """Insert everything the facts prove, in journal order."""
    import sqlalchemy as sa

    r = _Replay(conn, report)
    ledger_versions = {id(v.record) for v in facts.versions.values() if v.record is not None}
    for v in sorted((v for v in facts.versions.values() if v.record is None), key=lambda v: v.manifest.created_at):
        r.version_from_manifest(v)
    with progress.task("Rebuilding the catalog", len(facts.records)) as advance:
        for entry, rec in facts.records:
            kind = rec.get("kind")
            if kind == "dataset.version" and id(rec) not in ledger_versions:
                continue  # a losing or unreadable duplicate: noted by read_facts
            handler = getattr(r, "on_" + str(kind).replace(".", "_"), None)
            if handler is None:
                report.note(f"{kind} record", entry.name, "a kind of record this version of LensVault does not know")
            else:
                try:
                    with conn.begin_nested():
                        handler(rec["data"], entry)
                        r.events.extend(rec.get("events", []))
                except _Skip as s:
                    report.note(f"{kind} record", entry.name, str(s))
                except sa.exc.IntegrityError as e:
                    report.note(f"{kind} record", entry.name, f"conflicts with an earlier record ({e.orig})")
            advance(1)
    r.finish()


class _Skip(Exception):
    pass


class _Replay:
    def __init__(self, conn, report: RebuildReport):
        from lensvault.catalog import registry_schema, runs_schema, schema
        from lensvault.catalog.runs_schema import run_latest_metrics

        self.conn = conn
        self.report = report
        self.s, self.rs, self.gs, self.latest_t = schema, runs_schema, registry_schema, run_latest_metrics
        self.events: list[dict] = []
        self.synthetic: list[dict] = []
        self.runs: set[str] = set()
        self.snapshots: set[str] = set()
        self.latest: dict[tuple[str, str], tuple] = {}
        self.alias_at: dict[tuple[str, str], dict] = {}

    def _insert(self, table, rows) -> None:
        rows = rows if isinstance(rows, list) else [rows]
        if rows:
            self.conn.execute(table.insert(), rows)

    def _object_refs(self, kind: str, owner: str, oids) -> None:
        import sqlalchemy as sa

        t = self.s.object_refs
        for oid in sorted({o for o in oids if o}):
            exists = self.conn.execute(sa.select(t.c.oid).where(t.c.owner_kind == kind, t.c.owner_id == owner,
                                                                t.c.oid == oid)).first()
            if exists is None:
                self._insert(t, {"owner_kind": kind, "owner_id": owner, "oid": oid})

    # -- datasets
    def _snapshot(self, row: dict) -> None:
        if row["snapshot_id"] not in self.snapshots:
            self.snapshots.add(row["snapshot_id"])
            self._insert(self.s.snapshots, row)
            self.report.count("snapshots")

    def on_dataset_version(self, data: dict, entry) -> None:
        self._snapshot(data["snapshot"])
        self._insert(self.s.dataset_versions, data["row"])
        self.report.count("dataset_versions")

    def version_from_manifest(self, v) -> None:
        """A version only its manifest file proves: the rows and the event, as the snapshot wrote them."""
        from lensvault.datasets.manifest import canonical_json
        from lensvault.refs import SemVer

        m = v.manifest
        sv = SemVer.parse(m.version)
        tables = m.tables
        counts = m.counts
        parent = m.parent.rpartition("@")[2] if m.parent else None
        self._snapshot({"snapshot_id": m.snapshot_id, "snapshot_oid": m.snapshot_id,
                        "files_oid": tables["files"]["oid"], "file_count": int(counts.get("files", 0)),
                        "total_bytes": int(counts.get("bytes", 0)),
                        "annotations_oid": tables.get("annotations", {}).get("oid"),
                        "images_oid": tables.get("images", {}).get("oid"), "created_at": m.created_at})
        self._insert(self.s.dataset_versions, {
            "name": m.name, "version": m.version, "major": sv.major, "minor": sv.minor, "patch": sv.patch,
            "prerelease": sv.prerelease, "snapshot_id": m.snapshot_id, "manifest_oid": v.manifest_oid,
            "parent": parent, "file_count": int(counts.get("files", 0)), "total_bytes": int(counts.get("bytes", 0)),
            "notes": m.notes or "", "bump": m.bump, "forced": bool(m.forced),
            "changelog": None if m.changelog is None else canonical_json(m.changelog).decode(),
            "created_at": m.created_at, "created_by": m.created_by})
        self.synthetic.append({
            "at": m.created_at, "actor": m.created_by, "action": "dataset.version.create",
            "subject_kind": "dataset_version", "subject": v.ref, "before": None,
            "after": json.dumps({"snapshot_id": m.snapshot_id, "manifest_oid": v.manifest_oid,
                                 "files": int(counts.get("files", 0)), "bytes": int(counts.get("bytes", 0)),
                                 "parent": m.parent, "bump": m.bump, "forced": bool(m.forced),
                                 "rebuilt_from": "data/manifests"}, sort_keys=True)})
        self.report.count("dataset_versions")
        self.report.count("dataset_versions_from_manifest_files")

    # -- configs and runs
    def on_config(self, data: dict, entry) -> None:
        row = data["row"]
        self._insert(self.rs.configs, row)
        self._object_refs("config", row["config_id"], [data.get("oid")])
        self.report.count("configs")

    def on_run_start(self, data: dict, entry) -> None:
        row = data["row"]
        self._insert(self.rs.runs, row)
        if data.get("reservation"):
            self._insert(self.rs.model_reservations, data["reservation"])
        self.runs.add(row["run_id"])
        self.report.count("runs")

    def _known_run(self, run_id: str) -> None:
        if run_id not in self.runs:
            raise _Skip(f"names run {run_id}, whose start record is missing")

    def on_run_environment(self, data: dict, entry) -> None:
        self._known_run(data["run_id"])
        t = self.rs.runs
        self.conn.execute(t.update().where(t.c.run_id == data["run_id"]).values(environment_oid=data["environment_oid"]))
        self._object_refs("run", data["run_id"], [data["environment_oid"]])

    def on_run_params(self, data: dict, entry) -> None:
        self._known_run(data["run_id"])
        self._insert(self.rs.run_params, data["params"])
        self.report.count("run_params", len(data["params"]))

    def on_run_metrics(self, data: dict, entry) -> None:
        cols = ("run_id", "key", "value", "step", "class_name", "slice", "at")
        points = [tuple(p) for p in data["points"]]
        for run_id in {p[0] for p in points}:
            self._known_run(run_id)
        self._insert(self.rs.run_metrics, [dict(zip(cols, p)) for p in points])
        for p in points:
            if p[4] is None and p[5] is None:
                self.latest[(p[0], p[1])] = p  # the last overall value, as write_metric_points keeps it
        self.report.count("run_metric_points", len(points))

    def on_run_artifacts(self, data: dict, entry) -> None:
        self._known_run(data["run_id"])
        self._insert(self.rs.run_artifacts, data["artifacts"])
        self._object_refs("run", data["run_id"], [a["sha256"] for a in data["artifacts"]])
        self.report.count("run_artifacts", len(data["artifacts"]))

    def on_run_finish(self, data: dict, entry) -> None:
        self._known_run(data["run_id"])
        t = self.rs.runs
        values = data["values"]
        done = self.conn.execute(t.update().where(t.c.run_id == data["run_id"], t.c.status.in_(_OPEN_STATES))
                                 .values(**values)).rowcount
        if not done:
            raise _Skip(f"run {data['run_id']} was already finished by an earlier record")
        if data.get("release_reservation"):
            r = self.rs.model_reservations
            self.conn.execute(r.delete().where(r.c.run_id == data["run_id"]))
        self._object_refs("run", data["run_id"], [values.get("log_oid"), values.get("environment_oid")])

    def on_evaluation(self, data: dict, entry) -> None:
        row = data["row"]
        self._insert(self.rs.evaluations, row)
        self._object_refs("evaluation", row["eval_id"], [row.get("predictions_oid")])
        self.report.count("evaluations")

    # -- registry
    def on_model_version(self, data: dict, entry) -> None:
        row = data["row"]
        self._insert(self.gs.model_versions, row)
        self._insert(self.gs.model_files, data["files"])
        self._object_refs("model", f"{row['name']}@{row['version']}",
                          [row["bundle_oid"], *(f["sha256"] for f in data["files"])])
        self.report.count("model_versions")

    def on_alias_move(self, data: dict, entry) -> None:
        move = data["move"]
        self._insert(self.gs.alias_moves, move)
        key = (move["name"], move["alias"])
        if key not in self.alias_at or self.alias_at[key]["id"] < move["id"]:
            self.alias_at[key] = move
        self.report.count("alias_moves")

    def on_events(self, data: dict, entry) -> None:
        pass

    # -- at the end
    def finish(self) -> None:
        for (name, alias), move in sorted(self.alias_at.items()):
            self._insert(self.gs.aliases, {"name": name, "alias": alias, "version": move["to_version"],
                                           "updated_at": move["at"], "move_id": move["id"]})
        if self.latest:
            self._insert(self.latest_t, [{"run_id": p[0], "key": p[1], "value": p[2], "step": p[3], "at": p[6]}
                                         for p in self.latest.values()])
        seen: set[int] = set()
        events = []
        for ev in sorted(self.events, key=lambda e: e["id"]):
            if ev["id"] in seen:
                self.report.note("event", f"id {ev['id']}", "recorded twice; the second copy is dropped")
                continue
            seen.add(ev["id"])
            events.append(ev)
        top = max(seen, default=0)
        for i, ev in enumerate(sorted(self.synthetic, key=lambda e: e["at"]), start=1):
            events.append({**ev, "id": top + i})
        cols = ("id", "at", "actor", "action", "subject_kind", "subject", "before", "after")
        for i in range(0, len(events), 1000):
            self.conn.execute(self.s.events.insert(), [{c: e.get(c) for c in cols} for e in events[i:i + 1000]])
        self.report.count("events", len(events))
