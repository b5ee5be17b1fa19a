"""The ledger: every catalog write is also an immutable record in the store.

The store is the truth and the catalog an index of it. A dataset version already names
itself (its manifest is an object); the ledger does the same for everything else a
catalog holds — configs, runs, their params, metrics and artifacts, evaluations, model
versions, alias moves, API tokens (hashed) and events — so that ``lensvault catalog rebuild`` can recreate a
lost or damaged catalog from the store alone, and a remote can later be "a store plus a
few refs". Layout under the store root (one ledger per catalog, so vaults sharing a
store keep theirs apart; the id is in ``catalog_info`` and in each vault's config)::

    ab/cdef…                                   record objects: canonical JSON, like any object
    ledgers/<catalog-id>/journal/<YYYY-MM>/<stamp>-<kind>-<oid>
                                               one empty, write-once entry per record: the
                                               list rebuild reads (no object is hashed to find it)
    ledgers/<catalog-id>/refs/datasets/<name>/<version>   record oid; created only if absent
    ledgers/<catalog-id>/refs/models/<name>/<version>     record oid; created only if absent
    ledgers/<catalog-id>/refs/configs/<id>                record oid; created only if absent
    ledgers/<catalog-id>/refs/aliases/<name>/<alias>      oid of the alias's latest move record

Order, as for a push: objects first (the caller stored them), then the record object,
then its journal entry and refs — all inside the catalog transaction, before COMMIT. If
the transaction does not commit, they are removed again (``Catalog.Transaction.undo``).
A write-once ref that already exists means the store holds a version the catalog does
not know (a catalog restored from an older copy): the write is refused rather than
recording a second, different ``NAME@VERSION``. A write killed between its store entries
and its COMMIT left an intent naming them; the next write finishes it (``lensvault.unfinished``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lensvault.errors import AlreadyExists, IntegrityError

if TYPE_CHECKING:
    from lensvault.vault import Vault

__all__ = ["FORMAT", "LOCAL_KINDS", "Entry", "entries", "ledger_prefix", "read_record", "record", "record_events"]

FORMAT = "lensvault.record/1"
# Records that belong to their catalog alone: rebuild replays them, but push never sends them and
# pull/clone never take them from a remote (a token opens one vault's server; a remote that could
# hand a clone a token would let whoever wrote to the bucket into the clone's server).
LOCAL_KINDS = frozenset({"token.create", "token.revoke"})


def ledger_prefix(catalog_id: str) -> str:
    return f"ledgers/{catalog_id}"


def _canonical(obj) -> bytes:
    """Sorted keys, no whitespace, UTF-8. orjson writes it ~10x faster than json (a metric batch
    of 20,000 points is one record); json takes what orjson refuses (integers over 64 bits)."""
    import orjson

    try:
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS, default=str)
    except TypeError:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                          default=str).encode("utf-8")


@dataclass(frozen=True)
class Entry:
    """One journal entry: when, what kind, which record object."""

    name: str
    stamp: str
    kind: str
    oid: str


def _entry_name(catalog_id: str, at: str, kind: str, oid: str) -> str:
    # at = 2026-11-26T10:30:05.123456Z -> 20261126T103005123456Z: sorts as time, safe as a file name
    stamp = at.replace("-", "").replace(":", "").replace(".", "")
    return f"{ledger_prefix(catalog_id)}/journal/{at[:7]}/{stamp}-{kind}-{oid}"


def _parse_entry(name: str) -> Entry | None:
    base = name.rsplit("/", 1)[-1]
    stamp, _, rest = base.partition("-")
    kind, _, oid = rest.rpartition("-")
    if not stamp or not kind or len(oid) != 64:
        return None
    return Entry(name, stamp, kind, oid)


def record(vault: Vault, conn, kind: str, data: dict, *, objects=(), ref: str | None = None,
           move: str | None = None) -> str:
    """Record one catalog write in the store, inside its transaction ``conn``; the record's oid.

    ``data`` is what rebuild needs to recreate the rows; ``objects`` are the oids the write
    keeps alive (gc keeps them while the record exists). The events the transaction
    appended so far go into the same record. ``ref`` (``datasets/NAME/VERSION``…) is
    created write-once; ``move`` (``aliases/NAME/ALIAS``) is pointed at this record.
    """
    from lensvault.catalog.catalog import utcnow

    catalog = vault.catalog
    txn = catalog.transaction(conn)
    if txn is None:
        raise RuntimeError("ledger.record must be called inside vault.catalog.begin()")
    cid = catalog.catalog_id
    assert cid is not None  # set when the vault opened its catalog
    store = vault.store
    at = utcnow()
    doc = {"format": FORMAT, "kind": kind, "catalog_id": cid, "at": at, "data": data,
           "events": txn.take_events(), "objects": sorted({o for o in objects if o})}
    oid = store.put_bytes(_canonical(doc))
    entry = _entry_name(cid, at, kind, oid)
    ref_name = f"{ledger_prefix(cid)}/refs/{ref}" if ref is not None else None
    move_name = f"{ledger_prefix(cid)}/refs/{move}" if move is not None else None
    before = None
    if ref_name or move_name:
        # What a kill before COMMIT would leave, named before it exists (lensvault.unfinished);
        # what such a kill did leave is undone first (its alias ref, its write-once ref).
        from lensvault.unfinished import finish, note_intent, writes_in_flight

        if writes_in_flight(vault):
            finish(vault)
        before = store.get_ref(move_name) if move_name else None
        note_intent(vault, txn, {"entry": entry, "oid": oid, "kind": kind, "ref": ref_name, "move": move_name,
                                 "before": before.decode() if before else None})
    store.put_ref(entry, b"", exclusive=True)
    txn.on_undo(lambda: store.delete_ref(entry))
    if ref_name is not None:
        # A write killed meanwhile may have left the ref: finished (undone), it is free.
        if not store.put_ref(ref_name, oid.encode(), exclusive=True) and not (
                finish(vault) and store.put_ref(ref_name, oid.encode(), exclusive=True)):
            assert ref is not None  # ref_name is made of it
            raise _recorded_elsewhere(vault, ref, ref_name)
        txn.on_undo(lambda: store.delete_ref(ref_name))
    if move_name is not None:
        store.put_ref(move_name, oid.encode())
        txn.on_undo(lambda: store.delete_ref(move_name) if before is None else store.put_ref(move_name, before))
    return oid


def record_events(vault: Vault, conn, txn) -> None:
    """Record events no write path recorded (``Catalog.before_commit``): every event is in the store."""
    if txn.events:
        record(vault, conn, "events", {})


def _recorded_elsewhere(vault: Vault, ref: str, name: str) -> AlreadyExists:
    what_kind, _, key = ref.partition("/")
    label = key.replace("/", "@", 1) if what_kind in ("datasets", "models") else key
    detail = ""
    try:
        rec = read_record(vault.store, (vault.store.get_ref(name) or b"").decode().strip())
        detail = f" (recorded {rec['at']}"
        who = next((e["actor"] for e in rec.get("events", [])), None)
        detail += f" by {who})" if who else ")"
    except Exception:  # noqa: BLE001 - the explanation is best effort; the refusal is what matters
        pass
    return AlreadyExists(
        f"{label} is already recorded in the store{detail}, but this catalog does not have it",
        where=f"{vault.store.url}/{name}",
        fix="the catalog is missing writes (restored from an older copy, or a write was killed before its "
            "commit): run `lensvault catalog rebuild --force` to bring them back, then choose a new version",
    )


def entries(store, catalog_id: str) -> list[Entry]:
    """Every journal entry of a catalog's ledger, in time order."""
    out = []
    for name in store.list_refs(f"{ledger_prefix(catalog_id)}/journal"):
        e = _parse_entry(name)
        if e is not None:
            out.append(e)
    out.sort(key=lambda e: (e.stamp, e.name))
    return out


def read_record(store, oid: str) -> dict:
    """A record object, after checking that its bytes hash to ``oid`` and that it is a record."""
    data = store.read_bytes(oid)
    if hashlib.sha256(data).hexdigest() != oid:
        raise IntegrityError(f"record {oid[:12]}… is corrupt in the store", where=oid,
                             fix="restore the object from a copy of the store; `lensvault verify` lists all damage")
    try:
        doc = json.loads(data)
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise IntegrityError(f"object {oid[:12]}… is not a ledger record", where=oid,
                             fix="the journal entry names the wrong object; remove the entry")
    return doc


def ref_target(store, catalog_id: str, ref: str) -> str | None:
    data = store.get_ref(f"{ledger_prefix(catalog_id)}/refs/{ref}")
    return data.decode().strip() if data else None
