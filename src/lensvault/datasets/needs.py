"""Which versions, runs, models… need which stored objects (for verify, gc, and the errors
that name what a missing or damaged object breaks)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, TypedDict

if TYPE_CHECKING:
    from lensvault.datasets.files_table import DamagedFile
    from lensvault.datasets.versions import DatasetVersion
    from lensvault.vault import Vault

__all__ = ["all_versions", "damage_warnings", "needed", "object_refs", "versions_needing"]


class DamageWarning(TypedDict):
    """A ``Dataset.warnings`` entry (and its ``--json`` shape): a file damaged through a hardlink."""

    path: str
    oid: str
    needed_by: list[str]
    what: str
    fix: str


def all_versions(vault: Vault) -> list[DatasetVersion]:
    """Every dataset version the catalog records."""
    from lensvault.datasets.versions import all_versions as every_version

    with vault.catalog.read() as conn:
        return every_version(conn)


def object_refs(vault: Vault) -> dict[str, list[str]]:
    """oid → the runs, configs, evaluations and models that recorded it (``kind:id``)."""
    from lensvault.catalog.repos.object_refs import ObjectRefRepo

    out: dict[str, list[str]] = {}
    with vault.catalog.read() as conn:
        for kind, owner, oid in ObjectRefRepo(conn).all():
            out.setdefault(oid, []).append(f"{kind}:{owner}")
    return out


def needed(vault: Vault, ref: str | None) -> dict[str, list[str]]:
    """oid -> the things that need it."""
    from lensvault.datasets import files_table
    from lensvault.datasets.manifest import Manifest

    needed: dict[str, list[str]] = {}
    records = [vault.dataset(ref).record] if ref else all_versions(vault)
    for rec in records:
        for oid in (rec.manifest_oid, rec.snapshot_id):
            needed.setdefault(oid, []).append(rec.ref)
        try:
            # The tables first: a missing files table must be reported even though
            # the files it lists cannot be.
            tables = Manifest.from_bytes(vault.store.read_bytes(rec.manifest_oid)).tables
            for t in tables.values():
                needed.setdefault(t["oid"], []).append(rec.ref)
            oids = set(files_table.read_object(vault.store, tables["files"]["oid"], columns=["sha256"])
                       .column("sha256").to_pylist())
        except Exception:  # noqa: BLE001 - a missing or corrupt manifest or table: reported by its own check
            continue
        for oid in oids:
            needed.setdefault(oid, []).append(rec.ref)
    if ref is None:
        for oid, owners in object_refs(vault).items():
            needed.setdefault(oid, []).extend(owners)
    return needed


def versions_needing(vault: Vault, oids: Iterable[str]) -> dict[str, set[str]]:
    """oid → the versions, runs, models… that need it (reads every version: for error paths)."""
    want = set(oids)
    out: dict[str, set[str]] = {o: set() for o in want}
    try:
        by_oid = needed(vault, None)
    except Exception:  # noqa: BLE001 - a catalog that cannot be read: the message names the object alone
        return out
    for o in want:
        out[o].update(by_oid.get(o, []))
    return out


def damage_warnings(vault: Vault, damaged: list[DamagedFile]) -> list[DamageWarning]:
    """What a write found damaged through hardlinks (ingest._damaged_through_links), said for people."""
    vault.verified.forget(d["oid"] for d in damaged)
    needed = versions_needing(vault, [d["oid"] for d in damaged])
    out: list[DamageWarning] = []
    for d in damaged:
        refs = sorted(needed.get(d["oid"], ()))
        out.append({
            "path": d["path"], "oid": d["oid"], "needed_by": refs,
            "what": (f"{d['path']} was changed in place while hardlinked into the store, which changed the "
                     f"stored object {d['oid'][:12]}… too: " + (", ".join(refs[:10]) or "no version")
                     + (f" … and {len(refs) - 10} more" if len(refs) > 10 else "") + " lost that file's original bytes"),
            "fix": "restore them from a copy that holds the original file: `lensvault verify --repair --from DIR`; "
                   "use --link copy (or reflink) for folders you edit in place",
        })
    return out
