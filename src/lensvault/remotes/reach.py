"""What a remote's journal and refs reach: every object some record there needs, read from the
remote itself (``verify --remote`` checks these objects, ``gc --remote`` keeps them).

Roots are every journal entry's record and every ref's record (a ref written by a push killed
before its journal entry still names a whole record: records go up before refs). Each record
keeps its ``objects`` (and the oids its row names, as rebuild does); a dataset version keeps
its manifest, snapshot, tables and every file its files table lists — read from the remote,
each hashed. Requests: the listings of ``journal/`` and ``refs/``, one GET per ref and per
record, and per dataset version its manifest and files table (``jobs`` in flight); never one
request per file.

What could not be read (a record, manifest or table missing or corrupt on the remote) is a
``problem``: verify reports it; gc refuses to run, since what it needed is then unknown.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lensvault.progress import NO_PROGRESS
from lensvault.remotes.closure import LedgerRecord, parse_journal

if TYPE_CHECKING:
    from lensvault.store.remote import RemoteStore

__all__ = ["Reach", "label", "reach", "require_remote"]


def require_remote(rs: RemoteStore) -> None:
    """Refuse a location nothing was pushed to (a wrong URL or prefix), before reading or writing there."""
    if not rs.exists():
        from lensvault.errors import NotFound

        raise NotFound("this location is not a LensVault remote (nothing was pushed there yet)", where=rs.url,
                       fix="check the remote's URL (`lensvault remote list`), or push to it first with "
                           "`lensvault push --all`")


def label(rec: LedgerRecord) -> str:
    """What a record is about, as a person names it: NAME@VERSION, a config id, a run id, an alias."""
    d = rec.data
    row = d.get("row") or {}
    if rec.kind in ("dataset.version", "model.version"):
        return f"{row.get('name')}@{row.get('version')}"
    if rec.kind == "config":
        return str(row.get("config_id"))
    if rec.kind == "evaluation":
        return str(row.get("eval_id"))
    if rec.kind == "alias.move":
        m = d.get("move") or {}
        return f"{m.get('name')}@{m.get('alias')}"
    runs = sorted(rec.run_ids())
    if runs:
        return ", ".join(runs)
    return rec.kind


@dataclass
class Reach:
    needs: dict[str, set[str]] = field(default_factory=dict)  # oid -> what needs it (labels)
    sizes: dict[str, int] = field(default_factory=dict)  # oid -> its size, where a files table says it
    hashed: set[str] = field(default_factory=set)  # read whole and hashed already (records, manifests, tables)
    problems: dict[str, dict[str, Any]] = field(default_factory=dict)  # oid -> {"problem": missing|corrupt, "what"}
    journal: list[str] = field(default_factory=list)  # the remote's journal entry names
    refs: dict[str, str] = field(default_factory=dict)  # "refs/…" -> record oid
    records: dict[str, LedgerRecord] = field(default_factory=dict)  # oid -> record, for those read

    def need(self, oid: str | None, who: str) -> None:
        if oid:
            self.needs.setdefault(oid, set()).add(who)


def reach(rs: RemoteStore, *, progress=NO_PROGRESS) -> Reach:
    out = Reach()
    out.journal = rs.list_refs("journal")
    names = rs.list_refs("refs")
    lock = threading.Lock()

    def read_ref(name: str) -> None:
        data = rs.get_ref(name)
        if data:
            with lock:
                out.refs[name] = data.decode().strip()

    rs.run_many(read_ref, names)
    roots: dict[str, list[str]] = {}  # record oid -> the journal entries and refs naming it
    kinds: dict[str, str] = {}
    for name in out.journal:
        entry = parse_journal(name)
        if entry is not None:
            roots.setdefault(entry.oid, []).append(name)
            kinds[entry.oid] = entry.kind
    for name, oid in out.refs.items():
        roots.setdefault(oid, []).append(name)

    def read_record(oid: str) -> None:
        data = _read(rs, oid, out, "record", roots[oid], lock)
        if data is None:
            return
        try:
            doc = json.loads(data)
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or not isinstance(doc.get("data"), dict):
            with lock:
                out.problems[oid] = {"problem": "corrupt", "what": "record", "needed_by": sorted(roots[oid]),
                                     "detail": "not a ledger record"}
            return
        rec = LedgerRecord(roots[oid][0], "", str(doc.get("kind") or kinds.get(oid, "")), oid, doc)
        with lock:
            out.records[oid] = rec

    with progress.task("Reading the remote's records", len(roots)) as advance:
        rs.run_many(read_record, sorted(roots), on_done=advance)
    from lensvault.remotes.ledgers import record_objects

    for oid, names in roots.items():
        for name in names:
            out.need(oid, name)
    for rec in out.records.values():
        subject = label(rec)
        for oid in record_objects(rec) - {rec.oid}:
            out.need(oid, subject)
    _versions(rs, out, lock, progress)
    return out


def _read(rs: RemoteStore, oid: str, out: Reach, what: str, needed_by, lock) -> bytes | None:
    """An object's bytes, hashed; None (and a problem noted) if it is missing or corrupt."""
    from lensvault.errors import ObjectMissing

    try:
        data = rs.get_raw(oid)
    except ObjectMissing:
        with lock:
            out.problems[oid] = {"problem": "missing", "what": what, "needed_by": sorted(needed_by)}
        return None
    with lock:
        out.hashed.add(oid)
    if hashlib.sha256(data).hexdigest() != oid:
        with lock:
            out.problems[oid] = {"problem": "corrupt", "what": what, "needed_by": sorted(needed_by),
                                 "detail": "its bytes do not hash to its name"}
        return None
    return data


def _versions(rs: RemoteStore, out: Reach, lock, progress) -> None:
    """Each dataset version's manifest, snapshot, tables and files, from its manifest and files table."""
    from lensvault.datasets import files_table
    from lensvault.datasets.manifest import Manifest

    versions: dict[str, list[str]] = {}  # manifest oid -> versions naming it
    for rec in out.records.values():
        if rec.kind == "dataset.version":
            moid = (rec.data.get("row") or {}).get("manifest_oid")
            if moid:
                versions.setdefault(moid, []).append(label(rec))
    tables: dict[str, list[str]] = {}  # files table oid -> versions

    def manifest(moid: str) -> None:
        who = versions[moid]
        data = _read(rs, moid, out, "manifest", who, lock)
        if data is None:
            return
        try:
            m = Manifest.from_bytes(data)
        except (ValueError, KeyError, TypeError) as e:
            with lock:
                out.problems[moid] = {"problem": "corrupt", "what": "manifest", "needed_by": sorted(who),
                                      "detail": f"not a manifest ({e})"}
            return
        with lock:
            for w in who:
                out.need(moid, w)
                out.need(m.snapshot_id, w)
                for t in m.tables.values():
                    out.need(t.get("oid"), w)
            files = m.tables.get("files", {}).get("oid")
            if files:
                tables.setdefault(files, []).extend(who)

    def files(oid: str) -> None:
        who = tables[oid]
        data = _read(rs, oid, out, "files table", who, lock)
        if data is None:
            return
        try:
            t = files_table.read(data, ["sha256", "size"], where=rs.location(oid))
        except Exception as e:  # noqa: BLE001 - a table that does not parse is a damaged object here
            with lock:
                out.problems[oid] = {"problem": "corrupt", "what": "files table", "needed_by": sorted(who),
                                     "detail": str(e)}
            return
        pairs = list(zip(t.column("sha256").to_pylist(), t.column("size").to_pylist()))
        with lock:
            for sha, size in pairs:
                for w in who:
                    out.need(sha, w)
                out.sizes[sha] = int(size)

    with progress.task("Reading the remote's manifests", len(versions)) as advance:
        rs.run_many(manifest, sorted(versions), on_done=advance)
    with progress.task("Reading the remote's files tables", len(tables)) as advance:
        rs.run_many(files, sorted(tables), on_done=advance)
