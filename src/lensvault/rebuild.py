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
from typing import TYPE_CHECKING

from lensvault.errors import AlreadyExists, CatalogDamaged, CatalogError, CatalogMissing, StorageError
from lensvault.progress import NO_PROGRESS

if TYPE_CHECKING:
    from lensvault.vault import Vault

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


def rebuild_catalog(vault: Vault, *, force: bool = False, progress=NO_PROGRESS) -> RebuildReport:
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


def _state(vault: Vault, url: str) -> tuple[str, str]:
    """What is there now: missing | empty | damaged | foreign | whole, and a few words on it."""
    from lensvault.catalog import Catalog
    from lensvault.catalog.replace import row_counts

    try:
        cat = Catalog(url)
    except CatalogError as e:
        return "damaged", e.what
    try:
        cat.open_existing(vault.config.catalog_id)
        with cat.read() as conn:
            counts = row_counts(conn, ("dataset_versions", "runs", "model_versions", "events"))
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
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def _rebuild_sqlite(path: Path, cid: str, facts, report: RebuildReport, progress) -> str | None:
    from lensvault.catalog import Catalog
    from lensvault.catalog.replace import checkpoint_sqlite

    tmp = path.with_name(f".{path.name}.rebuild-{os.getpid()}")
    for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm"), Path(f"{tmp}-journal")):
        p.unlink(missing_ok=True)
    new = Catalog(f"sqlite:///{tmp}", create=True)
    try:
        with new.begin() as conn:
            new.migrate_in(conn, catalog_id=cid)
            _replay(conn, facts, report, progress)
        # One self-contained file: no WAL beside it when it is renamed into place.
        checkpoint_sqlite(new.engine)
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
    from lensvault.catalog.locks import lock_migrations
    from lensvault.catalog.migrations import STEPS, tables_of
    from lensvault.catalog.replace import move_tables_aside, restart_id_sequences

    cat = Catalog(url)
    try:
        with cat.begin() as conn:
            lock_migrations(conn)
            # DDL is transactional here: other sessions see the old catalog or the new one.
            schema = f"lensvault_replaced_{_stamp().lower()}"
            moved = move_tables_aside(conn, tables_of(STEPS) | {"schema_migrations"}, schema)
            kept = schema if moved else None
            cat.migrate_in(conn, catalog_id=cid)
            _replay(conn, facts, report, progress)
            restart_id_sequences(conn, ("events", "alias_moves"))
        return f"schema {kept}" if kept else None
    finally:
        cat.close()


# -- replaying -------------------------------------------------------------------------------


def _replay(conn, facts, report: RebuildReport, progress) -> None:
    """Insert everything the facts prove, in journal order."""
    from lensvault.catalog.repos import Conflict, savepoint

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
                    with savepoint(conn):
                        handler(rec["data"], entry)
                        # (each tagged with the catalog that wrote it: ids count per catalog)
                        r.events.extend({**e, "_catalog": rec.get("catalog_id")} for e in rec.get("events", []))
                except _Skip as s:
                    report.note(f"{kind} record", entry.name, str(s))
                except Conflict as e:
                    report.note(f"{kind} record", entry.name, f"conflicts with an earlier record ({e})")
            advance(1)
    r.finish()


class _Skip(Exception):
    pass


class _Replay:
    """Each record's rows, inserted through the same repositories the original write used."""

    def __init__(self, conn, report: RebuildReport):
        from lensvault import catalog

        repos = catalog.repos
        self.datasets, self.configs, self.runs = repos.DatasetRepo(conn), repos.ConfigRepo(conn), repos.RunRepo(conn)
        self.evaluations, self.models = repos.EvaluationRepo(conn), repos.ModelRepo(conn)
        self.aliases, self.event_log, self.refs = repos.AliasRepo(conn), repos.EventRepo(conn), repos.ObjectRefRepo(conn)
        self.tokens = repos.TokenRepo(conn)
        self.report = report
        self.events: list[dict] = []
        self.synthetic: list[dict] = []
        self.run_ids: set[str] = set()
        self.snapshots: set[str] = set()
        self.latest: dict[tuple[str, str], tuple] = {}
        self.alias_at: dict[tuple[str, str], dict] = {}

    # -- datasets
    def _snapshot(self, row: dict) -> None:
        if row["snapshot_id"] not in self.snapshots:
            self.snapshots.add(row["snapshot_id"])
            self.datasets.add_snapshot(row)
            self.report.count("snapshots")

    def on_dataset_version(self, data: dict, entry) -> None:
        self._snapshot(data["snapshot"])
        self.datasets.add_version(data["row"])
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
        self.datasets.add_version({
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
        self.configs.add(row)
        self.refs.add_missing("config", row["config_id"], [data.get("oid")])
        self.report.count("configs")

    def on_run_start(self, data: dict, entry) -> None:
        row = data["row"]
        self.runs.add(row)
        if data.get("reservation"):
            self.runs.reserve(data["reservation"])
        self.run_ids.add(row["run_id"])
        self.report.count("runs")

    def _known_run(self, run_id: str) -> None:
        if run_id not in self.run_ids:
            raise _Skip(f"names run {run_id}, whose start record is missing")

    def on_run_environment(self, data: dict, entry) -> None:
        self._known_run(data["run_id"])
        self.runs.set_environment(data["run_id"], data["environment_oid"])
        self.refs.add_missing("run", data["run_id"], [data["environment_oid"]])

    def on_run_params(self, data: dict, entry) -> None:
        self._known_run(data["run_id"])
        if data["params"]:
            self.runs.add_params(data["params"])
        self.report.count("run_params", len(data["params"]))

    def on_run_metrics(self, data: dict, entry) -> None:
        points = [tuple(p) for p in data["points"]]
        for run_id in {p[0] for p in points}:
            self._known_run(run_id)
        if points:
            # The latest values are written once, at the end (finish), from the last overall points.
            self.runs.add_metric_points(points, keep_latest=False)
        for p in points:
            if p[4] is None and p[5] is None:
                self.latest[(p[0], p[1])] = p  # the last overall value, as write_metric_points keeps it
        self.report.count("run_metric_points", len(points))

    def on_run_artifacts(self, data: dict, entry) -> None:
        self._known_run(data["run_id"])
        if data["artifacts"]:
            self.runs.add_artifacts(data["artifacts"])
        self.refs.add_missing("run", data["run_id"], [a["sha256"] for a in data["artifacts"]])
        self.report.count("run_artifacts", len(data["artifacts"]))

    def on_run_finish(self, data: dict, entry) -> None:
        self._known_run(data["run_id"])
        values = data["values"]
        if not self.runs.end(data["run_id"], values, open_states=_OPEN_STATES):
            raise _Skip(f"run {data['run_id']} was already finished by an earlier record")
        if data.get("release_reservation"):
            self.runs.release(data["run_id"])
        self.refs.add_missing("run", data["run_id"], [values.get("log_oid"), values.get("environment_oid")])

    def on_evaluation(self, data: dict, entry) -> None:
        row = data["row"]
        self.evaluations.add(row)
        self.refs.add_missing("evaluation", row["eval_id"], [row.get("predictions_oid")])
        self.report.count("evaluations")

    # -- registry
    def on_model_version(self, data: dict, entry) -> None:
        row = data["row"]
        self.models.add(row, data["files"])
        self.refs.add_missing("model", f"{row['name']}@{row['version']}",
                              [row["bundle_oid"], *(f["sha256"] for f in data["files"])])
        self.report.count("model_versions")

    def on_alias_move(self, data: dict, entry) -> None:
        move = data["move"]
        self.aliases.add_move(move)
        key = (move["name"], move["alias"])
        if key not in self.alias_at or self.alias_at[key]["id"] < move["id"]:
            self.alias_at[key] = move
        self.report.count("alias_moves")

    def on_events(self, data: dict, entry) -> None:
        pass

    # -- API tokens (their secrets' hashes only; the secrets were never stored)
    def on_token_create(self, data: dict, entry) -> None:
        self.tokens.add(data["row"])
        self.report.count("tokens")

    def on_token_revoke(self, data: dict, entry) -> None:
        if self.tokens.get(data["token_id"]) is None:
            raise _Skip(f"revokes token {data['token_id']}, whose create record is missing")
        self.tokens.revoke(data["token_id"], at=data["at"], by=data["by"])
        self.report.count("token_revocations")

    # -- at the end
    def finish(self) -> None:
        for (name, alias), move in sorted(self.alias_at.items()):
            self.aliases.point(name, alias, move["to_version"], at=move["at"], move_id=move["id"], exists=False)
        self.runs.add_latest_metrics(list(self.latest.values()))
        # An event is known by the catalog that wrote it and its id there: this catalog's keep
        # their ids; those of other catalogs (records pulled, fetched or cloned from a remote that
        # several vaults push to) are numbered after them, in time order — never dropped for an
        # id another catalog also used.
        own = self.report.catalog_id
        seen: set[tuple[str | None, int]] = set()
        events: list[dict] = []
        foreign: list[dict] = []
        for ev in sorted(self.events, key=lambda e: (e["at"], e["id"])):
            key = (ev.pop("_catalog", None), ev["id"])
            if key in seen:
                self.report.note("event", f"id {ev['id']}", "recorded twice; the second copy is dropped")
                continue
            seen.add(key)
            (events if key[0] in (own, None) else foreign).append(ev)
        events.sort(key=lambda e: e["id"])
        top = max((e["id"] for e in events), default=0)
        later = sorted(foreign, key=lambda e: (e["at"], e["id"])) + sorted(self.synthetic, key=lambda e: e["at"])
        for i, ev in enumerate(later, start=1):
            events.append({**ev, "id": top + i})
        self.event_log.add_with_ids(events)
        self.report.count("events", len(events))
