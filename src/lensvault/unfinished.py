"""Writes killed between their ledger entries and their catalog COMMIT: found, and undone.

A catalog write records itself in the store (``lensvault.ledger.record``: the journal
entry, a write-once ref such as ``datasets/NAME/VERSION``, an alias's move ref) inside its
transaction, before COMMIT; a dataset version also writes its manifest file there. Killed
in between (kill -9, a machine losing power), the write leaves a store that proves a
version the catalog never committed: ``verify`` said the catalog lacked it, and the same
command run again was refused ("already recorded in the store", "manifests are frozen").

So a write that names a ref first leaves an *intent* under
``ledgers/<catalog-id>/pending/<owner>-<id>`` (owner: its writer's token, ``store/owner.py``)
listing what it is about to create; it is removed after COMMIT, or when the transaction
rolls back. An intent whose writer is gone is *unfinished*: the catalog decides whether its
write committed (the row it recorded is there, with the same content). If it did, only the
intent goes; if not, its journal entry and refs are removed (an alias ref points back where
it pointed), and the manifest file it wrote, if it is still exactly that write's. Who
finishes them: a write that meets a ref or manifest file such a write left (so running the
command again just works), and ``gc`` (they are in its plan). ``verify`` does not count
versions only an unfinished write proves as versions the catalog lacks, and a manifest file
is not read without the catalog while any write is in flight (``writes_in_flight``).

Intents of writers on other hosts cannot be judged from here; ``gc`` finishes them once
they are older than its grace period. Without a catalog (lost, damaged) nothing is decided.
"""

from __future__ import annotations

import json
import os
import uuid
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lensvault.catalog.catalog import Transaction
    from lensvault.store.base import ObjectStore
    from lensvault.vault import Vault

# One item: what one ledger record is about to create ("entry", "oid", "kind", full "ref" and
# "move" names or None, "before": what the move ref named until now).
Item = dict[str, Any]

__all__ = ["Unfinished", "finish", "find", "note_intent", "writes_in_flight"]

# The intent of each open transaction (catalog.Transaction → its ref name and items).
_INTENTS: weakref.WeakKeyDictionary[Transaction, dict[str, Any]] = weakref.WeakKeyDictionary()


def _prefix(catalog_id: str) -> str:
    # Beside the journal and refs of lensvault.ledger (which calls this module: no import back).
    return f"ledgers/{catalog_id}/pending"


def note_intent(vault: Vault, txn: Transaction, item: Item) -> None:
    """Record, before it happens, that ``txn`` is about to create ``item``'s entry and refs:
    ``{"entry", "oid", "kind", "ref", "move", "before"}`` (full ref names; ``before``: what the
    move ref named until now). Written durably; removed after COMMIT or on rollback."""
    from lensvault.store.owner import current

    store = vault.store
    state = _INTENTS.get(txn)
    if state is None:
        cid = vault.catalog.catalog_id
        assert cid is not None  # set when the vault opened its catalog
        name = f"{_prefix(cid)}/{current()}-{uuid.uuid4().hex[:12]}"
        state = _INTENTS[txn] = {"name": name, "items": []}

        def drop() -> None:
            store.delete_ref(name)

        txn.on_commit(drop)
        txn.on_undo(drop)  # runs last: the entries and refs go first
    state["items"].append(item)
    store.put_ref(state["name"], json.dumps({"items": state["items"]}, sort_keys=True).encode())


def writes_in_flight(vault: Vault) -> bool:
    """Whether any write of this catalog is between its ledger entries and its COMMIT (or was
    killed there): a manifest file alone then proves nothing, the catalog decides."""
    cid = vault.config.catalog_id
    store = vault.store
    return bool(cid and store.list_refs(_prefix(cid)))


@dataclass
class Unfinished:
    """An intent whose writer is gone (or, from another host, older than the grace period)."""

    name: str  # the intent's ref name
    owner: str
    age_seconds: float
    items: list[Item] = field(default_factory=list)
    committed: list[bool] = field(default_factory=list)  # per item: the catalog holds its write

    @property
    def undone(self) -> list[Item]:
        return [i for i, c in zip(self.items, self.committed) if not c]

    def describe(self) -> str:
        kinds = ", ".join(f"{i['kind']} {_label(i)}" for i in self.undone) or "nothing (it had committed)"
        return f"a write killed before its catalog commit: {kinds}"


def _label(item: Item) -> str:
    ref = item.get("ref") or item.get("move") or ""
    parts = ref.split("/refs/", 1)[-1].split("/")
    if len(parts) == 3 and parts[0] in ("datasets", "models", "aliases"):
        return f"{parts[1]}@{parts[2]}"
    return parts[-1]


def find(vault: Vault, *, grace_seconds: float | None = None) -> list[Unfinished]:
    """Unfinished writes of this vault's catalog, each with what the catalog says of it.

    Writers on this host that are gone are found at once; writers elsewhere only when
    ``grace_seconds`` is given and their intent is older. A catalog that cannot be read
    decides nothing: nothing is found."""
    from lensvault.errors import CatalogError
    from lensvault.store.owner import alive

    cid = vault.config.catalog_id
    store = vault.store
    if not cid:
        return []
    out = []
    for name in store.list_refs(_prefix(cid)):
        owner = name.rsplit("/", 1)[-1].rsplit("-", 1)[0]
        age = _age(store, name)
        live = alive(owner)
        if live or (live is None and (grace_seconds is None or age <= grace_seconds)):
            continue
        try:
            items = json.loads(store.get_ref(name) or b"{}").get("items", [])
        except (ValueError, AttributeError):
            items = []
        out.append(Unfinished(name, owner, age, [i for i in items if isinstance(i, dict)]))
    if not out:
        return out
    try:
        with vault.catalog.read() as conn:
            for u in out:
                u.committed = [_committed(vault, conn, i) for i in u.items]
    except CatalogError:
        return []
    return out


def _age(store: ObjectStore, name: str) -> float:
    age = store.ref_age(name)
    return 0.0 if age is None else age


def _record(vault: Vault, item: Item) -> dict[str, Any] | None:
    """The record object the item names, if it is whole (its bytes hash to its name)."""
    import hashlib

    from lensvault.errors import LensVaultError

    try:
        data = vault.store.read_bytes(item["oid"])
        doc = json.loads(data) if hashlib.sha256(data).hexdigest() == item["oid"] else None
    except (LensVaultError, KeyError, OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _committed(vault: Vault, conn: Any, item: Item) -> bool:
    """Whether the catalog holds the write ``item`` recorded (the same row, not a later one that
    reused its id). A kind this cannot check counts as committed: it is never undone."""
    from lensvault.catalog.repos import AliasRepo, ConfigRepo, DatasetRepo, ModelRepo

    rec = _record(vault, item)
    if rec is None:
        return False  # killed before its record was stored: nothing of it can have committed
    data, kind = rec.get("data") or {}, rec.get("kind")
    if kind == "dataset.version":
        row = data["row"]
        got = DatasetRepo(conn).get(row["name"], row["version"])
        return got is not None and got.manifest_oid == row["manifest_oid"]
    if kind == "model.version":
        row = data["row"]
        got = ModelRepo(conn).get(row["name"], row["version"])
        return got is not None and got.bundle_oid == row["bundle_oid"]
    if kind == "config":
        row = data["row"]
        got = ConfigRepo(conn).get(row["config_id"])
        return got is not None and (got.sha256, got.created_at) == (row["sha256"], row["created_at"])
    if kind == "alias.move":
        move = data["move"]
        return any((m.id, m.to_version, m.at) == (move["id"], move["to_version"], move["at"])
                   for m in AliasRepo(conn).moves(move["name"], move["alias"]))
    return True


def finish(vault: Vault, found: list[Unfinished] | None = None) -> list[Unfinished]:
    """Undo what the unfinished writes left that never committed, and remove their intents."""
    store = vault.store
    found = find(vault) if found is None else found
    for u in found:
        for item in u.undone:
            _undo(vault, item)
        store.delete_ref(u.name)
    return found


def _undo(vault: Vault, item: Item) -> None:
    store = vault.store
    oid = item.get("oid", "")

    def names_this(ref: str | None) -> bool:
        return bool(ref and (store.get_ref(ref) or b"").decode().strip() == oid)

    if item.get("ref") and names_this(item["ref"]):
        store.delete_ref(item["ref"])
    if item.get("move") and names_this(item["move"]):
        if item.get("before"):
            store.put_ref(item["move"], item["before"].encode())
        else:
            store.delete_ref(item["move"])
    if item.get("entry"):
        store.delete_ref(item["entry"])
    if item.get("kind") == "dataset.version":
        _remove_manifest_file(vault, item)


def _remove_manifest_file(vault: Vault, item: Item) -> None:
    """The manifest file the write wrote, if it is still exactly that write's manifest."""
    import hashlib

    rec = _record(vault, item)
    if rec is None:
        return
    row = rec["data"]["row"]
    path = vault.manifests_dir / row["name"] / f"{row['version']}.json"
    try:
        if hashlib.sha256(path.read_bytes()).hexdigest() != row["manifest_oid"]:
            return
        os.chmod(path, 0o644)
        path.unlink()
        path.parent.rmdir()  # the folder of a first version; kept when other versions are in it
    except OSError:
        pass
