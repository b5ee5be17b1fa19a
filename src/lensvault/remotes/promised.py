"""Objects a remote holds for this vault: what ``lensvault fetch`` recorded without the data.

``fetch`` adds a remote's records to this vault (catalog rows, ledger entries and refs) but
leaves their data objects — a version's files, a model's weights, a run's log and
artifacts, an evaluation's predictions — on the remote. For each record it brought that needs
such an object it writes a marker beside the ledger, in the store::

    ledgers/<catalog-id>/fetched/<record-oid>     {"remote": NAME, "url": URL}

The remote's journal entry for that record vouches that everything the record needs is
there (a push writes the entry last). So an object that is missing here and needed by a
marked record is "only on the remote", not lost: ``verify`` lists it apart, any checkout
brings it (remotes/autofetch.py), and ``pull REF`` brings all of REF's and removes the
markers of the records it completed. gc is unaffected: it deletes only objects that are
here, and a fetched version's manifest and tables (which gc reads to know what it needs)
are fetched with the records.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lensvault.remotes.closure import LedgerRecord
    from lensvault.vault import Vault

__all__ = ["forget", "mark", "marked", "record_needs", "remote_only", "split_remote_only"]


def _prefix(vault: Vault) -> str:
    from lensvault.ledger import ledger_prefix

    cid = vault.config.catalog_id
    assert cid is not None  # a vault with a ledger has its catalog id
    return f"{ledger_prefix(cid)}/fetched"


def mark(vault: Vault, records: list[LedgerRecord], remote: str, url: str) -> list[str]:
    """Write the markers of ``records`` (before their rows are replayed: a record is never in
    the catalog without its marker); the names written, for undoing a failed fetch."""
    body = json.dumps({"remote": remote, "url": url}, sort_keys=True).encode()
    prefix = _prefix(vault)
    made = []
    for rec in records:
        name = f"{prefix}/{rec.oid}"
        if vault.store.put_ref(name, body, exclusive=True):
            made.append(name)
    return made


def marked(vault: Vault) -> dict[str, dict[str, str]]:
    """record oid -> {"remote", "url"} for every record fetched without its objects."""
    if not vault.config.catalog_id:
        return {}
    prefix = _prefix(vault)
    out = {}
    for name in vault.store.list_refs(prefix):
        try:
            info = json.loads(vault.store.get_ref(name) or b"{}")
        except ValueError:
            info = {}
        out[name.rsplit("/", 1)[-1]] = {"remote": str(info.get("remote", "?")), "url": str(info.get("url", "?"))}
    return out


def forget(vault: Vault, record_oids) -> None:
    """Remove the markers of records whose objects are now all here (``pull`` brought them)."""
    if not vault.config.catalog_id:
        return
    prefix = _prefix(vault)
    have = set(vault.store.list_refs(prefix))
    for oid in record_oids:
        name = f"{prefix}/{oid}"
        if name in have:
            vault.store.delete_ref(name)


def record_needs(vault: Vault, rec: LedgerRecord) -> set[str]:
    """Every object a record needs: its own ``objects`` and, for a dataset version, every object
    its manifest names (read from this vault's store: fetch brought the manifest and tables)."""
    from lensvault.remotes.ledgers import record_objects, version_objects

    out = record_objects(rec)
    if rec.kind == "dataset.version":
        out |= version_objects(vault, rec)
    return out


def remote_only(vault: Vault) -> dict[str, str]:
    """oid -> the remote name, for every object a fetched record needs (here or not)."""
    from lensvault.ledger import read_record
    from lensvault.remotes.closure import LedgerRecord

    out: dict[str, str] = {}
    for oid, info in marked(vault).items():
        try:
            rec = LedgerRecord("", "", "", oid, read_record(vault.store, oid))
            assert rec.doc is not None  # just read
            rec.kind = str(rec.doc.get("kind"))
            objects = record_needs(vault, rec)
        except Exception:  # noqa: BLE001 - an unreadable record or table vouches for nothing; verify names it
            continue
        for o in objects:
            out.setdefault(o, info["remote"])
    return out


def split_remote_only(vault: Vault, missing: list[dict]) -> tuple[list[dict], list[dict]]:
    """``verify``'s missing objects as (lost, only on a remote): the second are those a fetched
    record needs, each with the remote's name."""
    if not missing:
        return missing, []
    there = remote_only(vault)
    lost, remote = [], []
    for m in missing:
        name = there.get(m["oid"])
        if name is None:
            lost.append(m)
        else:
            remote.append({**m, "remote": name})
    return lost, remote
