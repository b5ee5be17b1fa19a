"""``lensvault push``: objects first, then record objects, then refs and journal entries.

What the remote already has is known without asking per object: a record whose journal
entry is on the remote was pushed complete (entries are written last), so its objects —
for a dataset version, everything its manifest names — are there. Pushing 1.0.1 after
1.0.0 therefore sends the difference of their manifests. Whatever is left is checked by
listing the remote's objects once (LIST, 1,000 names a request) when there is much of it,
never by one HEAD per object; a few are just sent with ``If-None-Match: *``.

Objects below 4 MB and records travel in packs (store/packs.py): a pack and its index are
written before any ref or journal entry that needs what they hold.

Refs: dataset/model/config refs are created with ``If-None-Match: *``; a ref that names
another record is fine when it is the same snapshot (two vaults made the same version),
refused otherwise with both snapshot ids named. Aliases move by compare-and-swap on the
remote alias ref's ETag: of two machines promoting at once exactly one wins.
"""

from __future__ import annotations

import hashlib
import threading
from typing import TYPE_CHECKING

from lensvault.errors import IntegrityError, RemoteConflict
from lensvault.progress import NO_PROGRESS
from lensvault.remotes.closure import Ledger, LedgerRecord, select
from lensvault.remotes.config import open_remote
from lensvault.remotes.ledgers import local_ledger, record_objects, version_objects
from lensvault.remotes.missing_here import refuse_missing_here
from lensvault.remotes.results import PushResult

if TYPE_CHECKING:
    from lensvault.vault import Vault

__all__ = ["push"]

# Above this many objects of unknown state, one listing of the remote is cheaper than sending blind.
LIST_ABOVE = 64


def push(vault: Vault, refs: list[str], *, everything: bool = False, remote: str | None = None, jobs: int = 32,
         check_remote: bool = False, progress=NO_PROGRESS) -> PushResult:
    """``check_remote``: trust no ref on the remote — list its objects, send what is missing and
    replace what has the wrong size (after objects were lost or damaged there)."""
    from lensvault.errors import UsageError

    if not refs and not everything:
        raise UsageError("nothing to push", where="push",
                         fix="name what to push (NAME@X.Y.Z, NAME@ALIAS, a run id, a config id) or pass --all")
    spec, rs = open_remote(vault, remote, jobs=jobs)
    result = PushResult(spec.name, rs.url)
    local = local_ledger(vault)
    chosen = select(local, refs, everything=everything, where="this vault")
    rs.open_for_push()  # reads (or creates) the marker; fails clearly on a missing bucket or bad credentials
    on_remote = set(rs.list_refs("journal"))
    new = [r for r in chosen if r.journal not in on_remote]
    result.records_present = len(chosen) - len(new)
    _refuse_conflicts(rs, new, result)

    # -- objects: what the chosen records need, minus what complete records on the remote imply
    # A chosen record whose journal entry is on the remote is complete there, objects and all: only
    # the new ones need their objects looked at (so a push with nothing new reads no files table).
    needed: dict[str, None] = {}
    for rec in (chosen if check_remote else new):
        for oid in _objects(vault, rec):
            needed.setdefault(oid)
    present: set[str] = set()
    for rec in ([] if check_remote or not new else local.records):
        if rec.journal in on_remote:
            present |= _objects(vault, rec)
            present.add(rec.oid)
    records = {r.oid for r in (chosen if check_remote else new)}
    todo = [o for o in needed if o not in present and o not in records]
    damaged: set[str] = set()
    if len(todo) > LIST_ABOVE or check_remote:
        listing = rs.listing()
        result.listed = True
        if check_remote:
            damaged = {o for o in [*todo, *records] if o in listing and listing[o][0] != vault.store.stat(o).size}
            damaged |= _damaged_in_packs(rs, [o for o in [*todo, *records] if o in listing and o not in damaged])
        todo = [o for o in todo if o not in listing or o in damaged]
    result.objects_present = len(needed) - len(todo)
    refuse_missing_here(vault, chosen, todo, spec.name)  # before anything is sent
    result.objects_replaced = len(damaged)
    # One upload for both: small objects and records share packs (nothing names a record before its
    # ref and journal entry, written below once every pack and its index is whole).
    _upload(vault, rs, todo + sorted(records), result, progress, "Uploading objects", records=records,
            replace=damaged)

    # -- refs, then journal entries (the journal is what clone and pull list: last)
    moves: dict[tuple[str, str], list[LedgerRecord]] = {}
    with progress.task("Writing refs", len(new)) as advance:
        for rec in new:
            key = rec.alias_key()
            if key is not None:
                moves.setdefault(key, []).append(rec)
                advance(1)
                continue
            if _create_ref(rs, rec, result):
                rs.put_ref(rec.journal, b"", exclusive=True)
            advance(1)
    for key, recs in sorted(moves.items()):
        _move_alias(vault, rs, local, key, recs, result)
    return result


def _objects(vault: Vault, rec: LedgerRecord) -> set[str]:
    out = record_objects(rec)
    if rec.kind == "dataset.version":
        out |= version_objects(vault, rec)
    out.discard(rec.oid)
    return out


def _refuse_conflicts(rs, new: list[LedgerRecord], result: PushResult) -> None:
    """Before anything is sent: a write-once ref on the remote that names other content."""
    for rec in new:
        ref = rec.ref()
        if ref is None:
            continue
        there = rs.get_ref(ref)
        if there is not None:
            _check_same(rs, rec, ref, there.decode().strip())


def _check_same(rs, rec: LedgerRecord, ref: str, there: str) -> bool:
    """True if the remote's ``ref`` names this record or (a dataset version) the same snapshot."""
    if there == rec.oid:
        return True
    parts = ref.split("/")
    label = f"{parts[2]}@{parts[3]}" if len(parts) == 4 else parts[-1]
    if rec.kind == "dataset.version":
        from lensvault.remotes.ledgers import parse_record

        theirs = parse_record(rs.get_raw(there), there, rs.location(there))["data"]["row"]["snapshot_id"]
        ours = rec.data["row"]["snapshot_id"]
        if theirs == ours:
            return False
        raise RemoteConflict(
            f"{label} on the remote is other content: snapshot {theirs[:12]}… there, {ours[:12]}… here",
            where=f"{rs.url}/{ref}", fix="a version is written once, here and there: push this vault to another "
                                       "remote, or clone this remote into a new folder and snapshot your data "
                                       "there as a new version",
            ours=ours, theirs=theirs)
    raise RemoteConflict(f"{label} on the remote is another record ({there[:12]}…) than here ({rec.oid[:12]}…)",
                         where=f"{rs.url}/{ref}",
                         fix="a version is written once: register yours under a new version and push that",
                         ours=rec.oid, theirs=there)


def _create_ref(rs, rec: LedgerRecord, result: PushResult) -> bool:
    """Create the record's write-once ref; whether its journal entry should follow."""
    ref = rec.ref()
    if ref is None:
        return True
    if rs.put_ref(ref, rec.oid.encode(), exclusive=True):
        result.refs_created.append(ref)
        return True
    there = (rs.get_ref(ref) or b"").decode().strip()
    if _check_same(rs, rec, ref, there):
        result.refs_present.append(ref)
        return True
    result.same_content.append(ref)
    return False  # the first vault's record stands; ours would be a second record of one version


def _move_alias(vault: Vault, rs, local: Ledger, key: tuple[str, str], recs: list[LedgerRecord],
                result: PushResult) -> None:
    """Compare-and-swap the remote alias from the state this vault decided on to its latest move."""
    from lensvault.remotes.seen import seen_at

    name, alias = key
    ref = f"refs/aliases/{name}/{alias}"
    ours = local.refs.get(ref)
    if ours is None:
        return
    found = rs.get_ref_tagged(ref)
    try:
        if found is None:
            rs.swap_ref(ref, ours.encode(), None)
            result.aliases_moved.append(f"{name}@{alias}")
        else:
            there, etag = found[0].decode().strip(), found[1]
            if there != ours:
                if not _decided_after(vault, rs, local, key, there, ours, seen_at):
                    raise RemoteConflict("")
                rs.swap_ref(ref, ours.encode(), etag)  # If-Match: exactly one of two racing pushes wins
                result.aliases_moved.append(f"{name}@{alias}")
    except RemoteConflict:
        raise RemoteConflict(
            f"{name}@{alias} was moved on the remote by someone else (a move this vault had not seen when it "
            "last moved the alias)", where=f"{rs.url}/{ref}",
            fix=f"fetch it (`lensvault pull {name}@{alias}`), decide again (`lensvault model promote …`), "
                "and push again") from None
    for rec in recs:
        rs.put_ref(rec.journal, b"", exclusive=True)


def _decided_after(vault: Vault, rs, local: Ledger, key, there: str, ours: str, seen_at) -> bool:
    """Whether this vault's latest move of the alias came after the remote's current one."""
    order = {r.oid: i for i, r in enumerate(local.records) if r.alias_key() == key}
    if there in order:
        return order[there] < order.get(ours, -1)
    when = seen_at(vault, rs.url, key[0], key[1], there)
    mine = next((r for r in local.records if r.oid == ours), None)
    return bool(when and mine and mine.doc and mine.doc.get("at", "") > when)


def _upload(vault: Vault, rs, oids: list[str], result: PushResult, progress, label: str, *,
            records: set[str] | frozenset[str] = frozenset(),
            replace: frozenset[str] | set[str] = frozenset()) -> None:
    """Send objects, each hashed on the way out (a damaged local object is named and never becomes
    a remote object): those below ``rs.pack_below`` in packs of about ``rs.pack_target`` bytes
    (a few packs built at once: bounded memory), larger ones singly with ``If-None-Match: *``.
    ``replace`` (damaged on the remote) are sent singly, overwriting."""
    from lensvault.store.packs import group_for_packs
    from lensvault.store.remote import LARGE, PACKS_UP

    store = vault.store
    sizes: dict[str, int] = {}
    lock = threading.Lock()
    stat = {oid: store.stat(oid).size for oid in oids}
    small = [o for o in oids if stat[o] < rs.pack_below and o not in replace]
    single = [o for o in oids if stat[o] >= rs.pack_below or o in replace]

    def read_checked(oid: str) -> bytes:
        with store.open(oid) as f:
            data = f.read()
        if hashlib.sha256(data).hexdigest() != oid:
            raise _damaged(store, oid)
        return data

    def one(oid: str) -> None:
        path = store.local_path(oid)
        size = stat[oid]
        if path is not None and size > LARGE:
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            if h.hexdigest() != oid:
                raise _damaged(store, oid)
            body: bytes | str = path
        else:
            body = read_checked(oid)
        if rs.put_object(oid, body, replace=oid in replace):
            with lock:
                sizes[oid] = size

    groups = group_for_packs([(o, stat[o]) for o in small], rs.pack_target)
    with progress.task(label, len(oids)) as advance:
        def pack(group: list[str]) -> None:
            rs.put_pack((oid, read_checked(oid)) for oid in group)  # read one by one into the pack
            with lock:
                sizes.update((oid, stat[oid]) for oid in group)
                result.packs_sent += 1
            advance(len(group))

        rs.run_many(pack, groups, jobs=min(rs.jobs, PACKS_UP))
        rs.run_many(one, single, on_done=advance)
    result.records_sent += sum(1 for o in sizes if o in records)
    result.objects_sent += sum(1 for o in sizes if o not in records)
    result.bytes_sent += sum(sizes.values())


def _damaged_in_packs(rs, oids: list[str]) -> set[str]:
    """``--check-remote``: read back the objects whose only copy is in a pack (a size in an index
    says nothing about the bytes) and name those that do not hash to their oid; they are sent
    again singly, and readers take the single copy when the packed one is damaged."""
    loose = rs.listing_single()
    bad: set[str] = set()
    lock = threading.Lock()

    def check(index, got) -> None:
        for oid, data in got:
            if hashlib.sha256(data).hexdigest() != oid:
                with lock:
                    bad.add(oid)

    rs.read_packed([o for o in oids if o not in loose], check)
    return bad


def _damaged(store, oid: str) -> IntegrityError:
    return IntegrityError(f"object {oid[:12]}… is corrupt in this vault's store; it was not pushed",
                          where=store.location(oid),
                          fix="run `lensvault verify --repair` (add --from DIR with the original files), "
                              "then push again", oid=oid, corrupt=[oid])
