"""Which versions, runs, models… need which stored objects (for verify, gc, and the errors
that name what a missing or damaged object breaks)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, TypedDict

if TYPE_CHECKING:
    from lensvault.datasets.files_table import DamagedFile
    from lensvault.datasets.versions import DatasetVersion
    from lensvault.oid_set import OidSet
    from lensvault.vault import Vault

__all__ = ["all_versions", "damage_warnings", "needed_compact", "object_refs", "owners_in_versions",
           "version_objects", "versions_needing"]


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


def _records(vault: Vault, ref: str | None) -> list[DatasetVersion]:
    return [vault.dataset(ref).record] if ref else all_versions(vault)


def version_objects(vault: Vault, rec: DatasetVersion) -> tuple[set[str], OidSet]:
    """The objects one version needs: those it names itself (manifest, snapshot, tables) and
    those its files table lists (an ``OidSet``: no Python object per file). Raises what reading
    a missing or damaged manifest or table raises."""
    from lensvault.datasets import files_table
    from lensvault.datasets.manifest import Manifest
    from lensvault.oid_set import OidSet

    named = {rec.manifest_oid, rec.snapshot_id}
    tables = Manifest.from_bytes(vault.store.read_bytes(rec.manifest_oid)).tables
    named.update(t["oid"] for t in tables.values())
    # A row group at a time: the table's bytes and its column are never held whole, nor (past
    # OidSet's SPILL_ROWS) its ids.
    def parts() -> Iterator[OidSet]:
        for batch in files_table.batches(vault.store, tables["files"]["oid"], columns=["sha256"]):
            column = batch.column(0)
            try:
                yield OidSet.from_arrow(column)
            except ValueError:  # not a digest column as tables are written: kept one by one, exactly
                named.update(column.to_pylist())

    listed = OidSet.union(parts())
    return named, listed


def needed_compact(vault: Vault, ref: str | None) -> tuple[dict[str, list[str]], OidSet]:
    """What ``needed`` says, in memory that does not hold a Python object per file: oid → what
    needs it for the few objects each version names itself (manifest, snapshot, tables) and
    those runs, configs, evaluations and models recorded; and every object the versions' files
    tables list, as one ``OidSet`` (for the few of them that fail a check, ``owners_in_versions``
    says which versions list them)."""
    from lensvault.datasets.manifest import Manifest
    from lensvault.oid_set import OidSet

    named: dict[str, list[str]] = {}
    files = OidSet()
    for rec in _records(vault, ref):
        try:
            own, listed = version_objects(vault, rec)
        except Exception:  # noqa: BLE001 - a missing or corrupt manifest or table: reported by its own check
            # What could be read is still needed: the manifest, and the tables it names.
            own = {rec.manifest_oid, rec.snapshot_id}
            try:
                own.update(t["oid"] for t in Manifest.from_bytes(vault.store.read_bytes(rec.manifest_oid))
                           .tables.values())
            except Exception:  # noqa: BLE001 - reported by its own check
                pass
            listed = OidSet()
        for oid in own:
            named.setdefault(oid, []).append(rec.ref)
        files = files | listed
    if ref is None:
        for oid, owners in object_refs(vault).items():
            named.setdefault(oid, []).extend(owners)
    return named, files


def owners_in_versions(vault: Vault, ref: str | None, oids: Iterable[str]) -> dict[str, list[str]]:
    """oid → the versions (of ``ref``, or all) that need it — as their manifest, snapshot or a
    table, or as a file their files table lists — for a few oids (one ``is_in`` per table, read a
    row group at a time)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from lensvault.datasets import files_table
    from lensvault.datasets.manifest import Manifest

    want = sorted(set(oids))
    out: dict[str, list[str]] = {o: [] for o in want}
    if not want:
        return out
    value_set = pa.array(want, pa.string())
    for rec in _records(vault, ref):
        found = {o for o in (rec.manifest_oid, rec.snapshot_id) if o in out}
        try:
            tables = Manifest.from_bytes(vault.store.read_bytes(rec.manifest_oid)).tables
            found.update(t["oid"] for t in tables.values() if t["oid"] in out)
            for batch in files_table.batches(vault.store, tables["files"]["oid"], columns=["sha256"]):
                column = batch.column(0)
                found.update(pc.filter(column, pc.is_in(column, value_set=value_set)).to_pylist())
        except Exception:  # noqa: BLE001 - a missing or corrupt manifest or table: reported by its own check
            pass
        for oid in found:
            out[oid].append(rec.ref)
    return out


def versions_needing(vault: Vault, oids: Iterable[str]) -> dict[str, set[str]]:
    """oid → the versions, runs, models… that need it (reads every version: for error paths)."""
    want = set(oids)
    out: dict[str, set[str]] = {o: set() for o in want}
    try:
        for oid, versions in owners_in_versions(vault, None, want).items():
            out[oid].update(versions)
        for oid, owners in object_refs(vault).items():
            if oid in out:
                out[oid].update(owners)
    except Exception:  # noqa: BLE001 - a catalog that cannot be read: the message names the object alone
        return {o: set() for o in want}
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
