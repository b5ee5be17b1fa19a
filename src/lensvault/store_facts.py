"""What the store proves without the catalog: dataset versions, ledger records, the objects they need.

Two sources, both checked by hash:

- the catalog's ledger in the store (``lensvault.ledger``): every record object its journal
  lists, and the manifest object a ``dataset.version`` record names;
- ``data/manifests/NAME/VERSION.json`` in the repository, trusted only when its sha256
  names a manifest object in the store (an edited file or one from another vault's store
  proves nothing).

``catalog rebuild`` rebuilds from these; ``gc`` keeps everything they need even when the
catalog says otherwise; ``verify`` checks them when the catalog cannot be used.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lensvault.errors import IntegrityError, LensVaultError
from lensvault.progress import NO_PROGRESS

if TYPE_CHECKING:
    from lensvault.datasets.manifest import Manifest
    from lensvault.vault import Vault

__all__ = ["ProvenVersion", "StoreFacts", "evidence", "manifest_files", "read_facts", "store_needs"]

# Records that name no objects: gc need not read them (metric batches can be large).
_NO_OBJECTS = ("run.metrics", "run.params", "events", "token.create", "token.revoke")


@dataclass
class ProvenVersion:
    name: str
    version: str
    manifest_oid: str
    manifest: Manifest
    sources: list[str] = field(default_factory=list)  # "ledger", "data/manifests"
    record: dict | None = None  # the dataset.version ledger record, when there is one

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass
class StoreFacts:
    catalog_id: str | None
    versions: dict[tuple[str, str], ProvenVersion] = field(default_factory=dict)
    records: list[tuple] = field(default_factory=list)  # (journal Entry, record dict), in time order
    entries: list = field(default_factory=list)  # every journal entry, readable or not
    unproven: list[dict] = field(default_factory=list)  # {"what", "where", "problem"}

    def note(self, what: str, where: str, problem: str) -> None:
        self.unproven.append({"what": what, "where": where, "problem": problem})


def manifest_files(vault: Vault) -> list[Path]:
    d = Path(vault.manifests_dir)
    if not d.is_dir():
        return []
    return sorted(p for p in d.glob("*/*.json") if p.is_file() and not p.name.startswith("."))


def evidence(vault: Vault) -> str:
    """A short clause saying what the store and the manifests still hold (for error messages)."""
    from lensvault.ledger import ledger_prefix

    n_files = len(manifest_files(vault))
    n_records = 0
    if vault.config.catalog_id:
        try:
            n_records = len(vault.store.list_refs(f"{ledger_prefix(vault.config.catalog_id)}/journal"))
        except (OSError, LensVaultError):
            n_records = 0
    if not (n_files or n_records):
        return ""
    return f" (the store's ledger holds {n_records} record(s) and data/manifests/ {n_files} manifest file(s))"


def read_facts(vault: Vault, *, skip_kinds=(), progress=None) -> StoreFacts:
    """Every proven dataset version and every readable record (but those of ``skip_kinds``)."""
    from lensvault.errors import NotFound
    from lensvault.ledger import entries, read_record, ref_target

    cid = vault.config.catalog_id
    facts = StoreFacts(cid)
    store = vault.store
    if cid:
        facts.entries = entries(store, cid)
    todo = [e for e in facts.entries if e.kind not in skip_kinds]
    with (progress or NO_PROGRESS).task("Reading the ledger", len(todo)) as advance:
        for e in todo:
            try:
                facts.records.append((e, read_record(store, e.oid)))
            except (NotFound, IntegrityError) as err:
                facts.note(f"{e.kind} record", e.name, err.what)
            advance(1)

    for e, rec in facts.records:
        if e.kind != "dataset.version":
            continue
        row = rec["data"]["row"]
        key = (row["name"], row["version"])
        ref = f"{key[0]}@{key[1]}"
        assert cid is not None  # records are read only with a catalog id
        winner = ref_target(store, cid, f"datasets/{key[0]}/{key[1]}")
        if winner is not None and winner != e.oid:
            facts.note(f"dataset version {ref}", e.name,
                       "a second record for this version (a write that lost a race); the ref names another")
            continue
        manifest = _stored_manifest(vault, facts, row["manifest_oid"], ref, e.name)
        if manifest is not None:
            facts.versions[key] = ProvenVersion(key[0], key[1], row["manifest_oid"], manifest, ["ledger"], rec)

    for path in manifest_files(vault):
        rel = f"data/manifests/{path.parent.name}/{path.name}"
        try:
            data = path.read_bytes()
        except OSError as err:
            facts.note("manifest file", rel, f"cannot be read ({err.strerror})")
            continue
        oid = hashlib.sha256(data).hexdigest()
        if not store.has(oid):
            facts.note("manifest file", rel, "not a manifest object in the store (edited, or written by a vault "
                                             "with another store): it proves nothing")
            continue
        manifest = _stored_manifest(vault, facts, oid, rel, rel)
        if manifest is None:
            continue
        key = (manifest.name, manifest.version)
        if (path.parent.name, path.stem) != key:
            facts.note("manifest file", rel, f"holds the manifest of {key[0]}@{key[1]}, not of its own name")
            continue
        have = facts.versions.get(key)
        if have is None:
            facts.versions[key] = ProvenVersion(key[0], key[1], oid, manifest, ["data/manifests"])
        elif have.manifest_oid == oid:
            have.sources.append("data/manifests")
        else:
            facts.note("manifest file", rel, f"differs from the store's record of {key[0]}@{key[1]} "
                                             f"(manifest {have.manifest_oid[:12]}…); the record is kept")
    return facts


def _stored_manifest(vault: Vault, facts: StoreFacts, oid: str, label: str, where: str):
    from lensvault.datasets.manifest import Manifest
    from lensvault.errors import NotFound

    try:
        data = vault.store.read_bytes(oid)
        if hashlib.sha256(data).hexdigest() != oid:
            raise IntegrityError(f"manifest {oid[:12]}… is corrupt in the store")
        return Manifest.from_bytes(data)
    except (NotFound, IntegrityError) as err:
        facts.note(f"dataset version {label}", where, err.what)
    except ValueError as err:
        facts.note(f"dataset version {label}", where, f"not a manifest ({err})")
    return None


def store_needs(vault: Vault, *, skip_manifests=frozenset(), strict: bool = True) -> tuple[dict[str, list[str]], StoreFacts]:
    """oid -> what needs it, for everything the store proves (gc roots; verify without a catalog).

    Record objects are needed by their ledger; a record's ``objects`` by what it records; a
    proven version's manifest, snapshot, tables and files by the version. ``strict``: a proven
    version whose files cannot be listed is an IntegrityError (not knowing what a version
    needs means not knowing what is garbage); otherwise it is noted in ``facts.unproven``.
    Manifest files that parse but are not stored objects keep what they name, too.
    """
    from lensvault.datasets.handle import Dataset
    from lensvault.datasets.versions import DatasetVersion

    facts = read_facts(vault, skip_kinds=_NO_OBJECTS if strict else ())
    needs: dict[str, list[str]] = {}

    def need(oid, who):
        if oid:
            needs.setdefault(oid, []).append(who)

    for e in facts.entries:
        need(e.oid, f"ledger:{e.kind}")
    for e, rec in facts.records:
        subject = _subject(rec) or e.kind
        for oid in rec.get("objects", []):
            need(oid, subject)
    for v in facts.versions.values():
        if v.manifest_oid in skip_manifests:
            continue
        try:
            oids = Dataset(vault, DatasetVersion.from_manifest(v.manifest, v.manifest_oid), v.manifest).object_ids()
        except Exception as err:
            if strict:
                raise IntegrityError(
                    f"cannot list the objects of {v.ref} ({err})", where=v.ref,
                    fix=f"run `lensvault verify {v.ref}` and restore the damaged object before gc") from err
            facts.note(f"dataset version {v.ref}", v.ref, f"its files cannot be listed ({err})")
            oids = {v.manifest_oid, v.manifest.snapshot_id, *(t["oid"] for t in v.manifest.tables.values())}
        for oid in oids:
            need(oid, v.ref)
    for path in manifest_files(vault):
        _unstored_manifest_needs(vault, path, need)
    return needs, facts


def _subject(rec: dict) -> str | None:
    for ev in rec.get("events", []):
        return ev.get("subject")
    data = rec.get("data", {})
    return data.get("run_id")


def _unstored_manifest_needs(vault: Vault, path: Path, need) -> None:
    """A manifest file that is not a stored object but parses (say, from a `git pull`): keep what
    it names, as far as it can be read. It proves nothing, so nothing here is an error."""
    from lensvault.datasets.handle import Dataset
    from lensvault.datasets.manifest import Manifest
    from lensvault.datasets.versions import DatasetVersion

    try:
        data = path.read_bytes()
        oid = hashlib.sha256(data).hexdigest()
        if vault.store.has(oid):
            return  # a proven version: handled above
        m = Manifest.from_bytes(data)
    except Exception:  # noqa: BLE001 - an unreadable file proves nothing: it needs no objects
        return
    label = f"data/manifests/{path.parent.name}/{path.name}"
    need(m.snapshot_id, label)
    for t in m.tables.values():
        need(t.get("oid"), label)
    try:
        for o in Dataset(vault, DatasetVersion.from_manifest(m, oid), m).object_ids() - {oid}:
            need(o, label)  # (the file's own sha256 names no stored object)
    except Exception:  # noqa: BLE001 - what cannot be listed is kept by the objects named above
        pass
