"""Reading a ledger — this vault's (``ledgers/<catalog-id>/…`` in its store) or a remote's (``journal/``,
``refs/`` at its top) — into the same shape (closure.Ledger), every record checked by hash."""

from __future__ import annotations

import hashlib
import json
import threading
from typing import TYPE_CHECKING, Any

from lensvault.errors import IntegrityError
from lensvault.ledger import LOCAL_KINDS
from lensvault.progress import NO_PROGRESS
from lensvault.remotes.closure import Ledger, LedgerRecord, parse_journal

if TYPE_CHECKING:
    from lensvault.vault import Vault

__all__ = ["local_ledger", "record_objects", "remote_ledger", "version_objects"]


def _prefix(vault: Vault) -> str:
    from lensvault.ledger import ledger_prefix

    # The vault's config names its catalog's id (the catalog is refused on opening if its own differs):
    # reading the ledger from the store needs no catalog, and a push or status that opens none skips
    # SQLAlchemy's start-up. Older vaults without the id in their config ask the catalog.
    cid = vault.config.catalog_id or vault.catalog.catalog_id
    assert cid is not None  # an open catalog has its id (a catalog that lost it is refused on opening)
    return ledger_prefix(cid) + "/"


def local_ledger(vault: Vault) -> Ledger:
    from lensvault.ledger import read_record

    prefix = _prefix(vault)
    store = vault.store
    out = Ledger()
    for name in store.list_refs(prefix + "journal"):
        rec = parse_journal(name[len(prefix):])
        if rec is None or rec.kind in LOCAL_KINDS:  # this catalog's own (tokens): never pushed
            continue
        rec.doc = read_record(store, rec.oid)
        out.records.append(rec)
    out.records.sort(key=lambda r: (r.stamp, r.journal))
    for name in store.list_refs(prefix + "refs"):
        data = store.get_ref(name)
        if data:
            out.refs[name[len(prefix):]] = data.decode().strip()
    return out


def parse_record(data: bytes, oid: str, where: str) -> dict[str, Any]:
    from lensvault.ledger import FORMAT

    if hashlib.sha256(data).hexdigest() != oid:
        raise IntegrityError(f"record {oid[:12]}… on the remote is corrupt: its bytes do not hash to its name",
                             where=where, fix="push it again from a vault that has it intact (it is not stored here)",
                             oid=oid, corrupt=[oid])
    try:
        doc = json.loads(data)
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise IntegrityError(f"object {oid[:12]}… on the remote is not a ledger record", where=where,
                             fix="the remote's journal names the wrong object: remove that journal entry")
    return doc


def remote_ledger(rs, *, progress=NO_PROGRESS) -> tuple[Ledger, dict[str, bytes]]:
    """The remote's ledger, every record read (``jobs`` at a time) and checked; and the records' bytes."""
    out = Ledger()
    for name in rs.list_refs("journal"):
        rec = parse_journal(name)
        if rec is not None and rec.kind not in LOCAL_KINDS:  # a token on a remote is never taken in
            out.records.append(rec)
    out.records.sort(key=lambda r: (r.stamp, r.journal))
    raw: dict[str, bytes] = {}
    by_oid: dict[str, list[LedgerRecord]] = {}
    for rec in out.records:
        by_oid.setdefault(rec.oid, []).append(rec)
    lock = threading.Lock()

    def keep(oid: str, data: bytes) -> None:
        doc = parse_record(data, oid, rs.location(oid))
        with lock:
            raw[oid] = data
            for rec in by_oid[oid]:
                rec.doc = doc

    def read(oid: str) -> None:
        keep(oid, rs.get_raw(oid))

    def from_pack(index, got) -> None:
        for oid, data in got:
            keep(oid, bytes(data))

    with progress.task("Reading the remote's records", len(by_oid)) as advance:
        # Records travel in packs: read a pack's records in its fewest ranged GETs, not one each.
        single = rs.read_packed(sorted(by_oid), from_pack, on_done=advance)
        rs.run_many(read, single, on_done=advance)
    for name in rs.list_refs("refs"):
        data = rs.get_ref(name)
        if data:
            out.refs[name] = data.decode().strip()
    return out, raw


def record_objects(rec: LedgerRecord) -> set[str]:
    """The objects a record keeps alive (its ``objects``), and the record itself."""
    assert rec.doc is not None
    out = {o for o in rec.doc.get("objects", []) if o}
    d = rec.data
    row = d.get("row") or {}
    # What rebuild keeps referenced, in case an older record's ``objects`` left one out.
    for key in ("bundle_oid", "predictions_oid", "environment_oid", "log_oid", "manifest_oid"):
        if row.get(key):
            out.add(row[key])
    for key in ("environment_oid", "oid"):
        if isinstance(d.get(key), str) and len(d[key]) == 64:
            out.add(d[key])
    for f in d.get("files", []) or []:
        if isinstance(f, dict) and f.get("sha256"):
            out.add(f["sha256"])
    for a in d.get("artifacts", []) or []:
        if isinstance(a, dict) and a.get("sha256"):
            out.add(a["sha256"])
    values = d.get("values") or {}
    for key in ("log_oid", "environment_oid"):
        if values.get(key):
            out.add(values[key])
    return out


def version_objects(vault: Vault, rec: LedgerRecord) -> set[str]:
    """Everything a dataset version needs (files, tables, snapshot, manifest), from this vault's store."""
    from lensvault.datasets.handle import Dataset
    from lensvault.datasets.manifest import Manifest
    from lensvault.datasets.versions import DatasetVersion

    moid = rec.data["row"]["manifest_oid"]
    manifest = Manifest.from_bytes(vault.store.read_bytes(moid))
    return set(Dataset(vault, DatasetVersion.from_manifest(manifest, moid), manifest).object_ids())


def manifest_meta_objects(manifest, moid: str) -> set[str]:
    """The objects to fetch before a version's files can be listed: manifest, snapshot, tables."""
    return {moid, manifest.snapshot_id, *(t["oid"] for t in manifest.tables.values() if t.get("oid"))}
