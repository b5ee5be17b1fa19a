"""Verify (re-hash what the catalog names) and gc (plan, then delete the unreachable)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from lensvault.errors import CatalogError
from lensvault.hashing import hash_files
from lensvault.progress import NO_PROGRESS

__all__ = ["GcPlan", "VerifyReport", "plan_gc", "reachable_oids", "verify"]


@dataclass
class VerifyReport:
    checked: int
    missing: list[dict] = field(default_factory=list)
    corrupt: list[dict] = field(default_factory=list)
    manifest_files: list[dict] = field(default_factory=list)
    # Without a usable catalog: why, and what only the catalog could have told.
    catalog_problem: str | None = None
    catalog_skipped: list[str] = field(default_factory=list)
    unproven: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.corrupt or self.manifest_files or self.catalog_problem)

    def to_dict(self) -> dict:
        return {"ok": self.ok, "checked": self.checked, "missing": self.missing, "corrupt": self.corrupt,
                "manifest_files": self.manifest_files,
                "catalog": {"used": not self.catalog_skipped, "problem": self.catalog_problem,
                            "skipped": self.catalog_skipped},
                "unproven": self.unproven}


def _all_versions(vault):
    from lensvault.datasets.versions import DatasetVersion

    import sqlalchemy as sa

    from lensvault.catalog.schema import dataset_versions

    with vault.catalog.read() as conn:
        return [DatasetVersion.from_row(r) for r in conn.execute(sa.select(dataset_versions)).all()]


def _object_refs(vault) -> dict[str, list[str]]:
    import sqlalchemy as sa

    from lensvault.catalog.schema import object_refs

    out: dict[str, list[str]] = {}
    with vault.catalog.read() as conn:
        for kind, owner, oid in conn.execute(sa.select(object_refs.c.owner_kind, object_refs.c.owner_id, object_refs.c.oid)):
            out.setdefault(oid, []).append(f"{kind}:{owner}")
    return out


def _needed(vault, ref: str | None) -> dict[str, list[str]]:
    """oid -> the things that need it."""
    from lensvault.datasets.handle import Dataset

    needed: dict[str, list[str]] = {}
    records = [vault.dataset(ref).record] if ref else _all_versions(vault)
    for rec in records:
        for oid in (rec.manifest_oid, rec.snapshot_id):
            needed.setdefault(oid, []).append(rec.ref)
        ds = Dataset(vault, rec)
        try:
            # The tables first: a missing files table must be reported even though
            # the files it lists cannot be.
            for t in ds.manifest().tables.values():
                needed.setdefault(t["oid"], []).append(rec.ref)
            oids = ds.object_ids()
        except Exception:  # a missing or corrupt manifest or table: reported by its own check
            continue
        for oid in oids:
            needed.setdefault(oid, []).append(rec.ref)
    if ref is None:
        for oid, owners in _object_refs(vault).items():
            needed.setdefault(oid, []).extend(owners)
    return needed


CATALOG_ONLY = [
    "objects only the catalog names (what was written before the store kept a ledger)",
    "whether each catalog version still has its manifest file in data/manifests/",
]


def verify(vault, ref: str | None = None, *, progress=NO_PROGRESS, use_catalog: bool = True) -> VerifyReport:
    """Re-hash objects. Without a usable catalog (or with ``use_catalog=False``) the store is
    checked alone: every object, and everything the ledger and the stored manifests need."""
    from lensvault.store_facts import store_needs

    problem = None
    facts = None
    if use_catalog or ref is not None:
        try:
            needed = _needed(vault, ref)
        except CatalogError as e:
            if ref is not None:
                raise
            problem, needed = f"{e.what} — {e.fix}" if e.fix else e.what, None
    else:
        needed = None
    if ref is None:
        catalog_manifests = set(needed or ())  # versions the catalog listed: their files are known
        more, facts = store_needs(vault, skip_manifests=catalog_manifests, strict=False)
        needed = needed or {}
        for oid, owners in more.items():
            needed.setdefault(oid, []).extend(owners)
    oids = sorted(needed)
    if ref is None:
        # Objects nobody references are still checked: a corrupt one would
        # poison the next snapshot that dedupes against it.
        seen = set(oids)
        oids += [o for o in vault.store.iter_oids() if o not in seen]
    report = VerifyReport(checked=len(oids), catalog_problem=problem)
    with progress.task("Verifying", len(oids)) as advance:
        for oid, result in hash_files(oids, fn=vault.store.check, on_done=advance):
            if result == "missing":
                report.missing.append({"oid": oid, "needed_by": sorted(set(needed.get(oid, [])))})
            elif result == "corrupt":
                report.corrupt.append({"oid": oid, "needed_by": sorted(set(needed.get(oid, []))),
                                       "path": str(vault.store.oid_to_path(oid)) if hasattr(vault.store, "oid_to_path") else None})
    if ref is None and use_catalog and not problem:
        report.catalog_problem = _catalog_gaps(vault, facts)
    if ref is None and (problem or not use_catalog):
        report.catalog_skipped = list(CATALOG_ONLY)
        report.unproven = facts.unproven
        report.manifest_files = [{"ref": u["where"], "path": str(vault.root / u["where"]), "problem": "unproven",
                                  "fix": "restore the file from Git, or remove it if it is not a version of this vault"}
                                 for u in facts.unproven if u["what"] == "manifest file"]
    else:
        report.manifest_files = _check_manifest_files(vault, ref)
    return report


def _catalog_gaps(vault, facts) -> str | None:
    """Versions the store proves that the catalog does not list (a catalog restored from an older
    copy, or rows removed behind its triggers' back, as TRUNCATE on PostgreSQL does)."""
    import sqlalchemy as sa

    from lensvault.catalog.registry_schema import model_versions

    with vault.catalog.read() as conn:
        models = {(r.name, r.version) for r in conn.execute(sa.select(model_versions.c.name, model_versions.c.version))}
    datasets = {(v.name, v.version) for v in _all_versions(vault)}
    lost = [f"{n}@{v}" for n, v in sorted(set(facts.versions) - datasets)]
    for _entry, rec in facts.records:
        if rec.get("kind") == "model.version":
            row = rec["data"]["row"]
            if (row["name"], row["version"]) not in models:
                lost.append(f"{row['name']}@{row['version']}")
    if not lost:
        return None
    shown = ", ".join(lost[:10]) + (f" … and {len(lost) - 10} more" if len(lost) > 10 else "")
    return (f"the catalog lacks {len(lost)} version(s) the store proves: {shown} — "
            "`lensvault catalog rebuild --force` brings them back")


def _check_manifest_files(vault, ref):
    """A manifest file in the repo must be byte-identical to its stored object."""
    from lensvault.hashing import hash_file

    problems = []
    records = [vault.dataset(ref).record] if ref else _all_versions(vault)
    for rec in records:
        path = vault.manifests_dir / rec.name / f"{rec.version}.json"
        if not path.exists():
            problems.append({"ref": rec.ref, "path": str(path), "problem": "missing",
                             "fix": f"`lensvault dataset show {rec.ref} --restore-manifest` rewrites it from the store"})
        elif hash_file(path).oid != rec.manifest_oid:
            problems.append({"ref": rec.ref, "path": str(path), "problem": "modified",
                             "fix": f"manifests are frozen; `lensvault dataset show {rec.ref} --restore-manifest` restores it"})
    return problems


# -- gc -----------------------------------------------------------------------------------


def reachable_oids(vault) -> set[str]:
    from lensvault.datasets.handle import Dataset

    from lensvault.errors import IntegrityError

    keep: set[str] = set()
    catalog_manifests = set()
    for rec in _all_versions(vault):
        catalog_manifests.add(rec.manifest_oid)
        keep.update((rec.manifest_oid, rec.snapshot_id))
        try:
            keep.update(Dataset(vault, rec).object_ids())
        except Exception as e:
            # Not knowing what a version needs means not knowing what is garbage.
            raise IntegrityError(
                f"cannot list the objects of {rec.ref} ({e})",
                where=rec.ref,
                fix=f"run `lensvault verify {rec.ref}` and restore the damaged object before gc",
            ) from e
    keep.update(_object_refs(vault))
    # The store's own proof is a root too, whatever the catalog says: every ledger record and
    # what it keeps, every version the ledger or data/manifests/ proves (and what a manifest
    # file there names). A wrong or partial catalog cannot make gc delete a version's objects.
    from lensvault.store_facts import store_needs

    keep.update(store_needs(vault, skip_manifests=catalog_manifests)[0])
    return keep


@dataclass
class GcPlan:
    vault: object
    objects: list[tuple[str, int]]
    bytes: int
    kept: int
    grace_seconds: float
    vaults: list[str]
    notes: list[str]

    def to_dict(self) -> dict:
        return {"objects": len(self.objects), "bytes": self.bytes, "kept": self.kept, "vaults": self.vaults,
                "grace_seconds": self.grace_seconds, "notes": self.notes}

    def execute(self) -> dict:
        """Delete the planned objects that are still unreachable now."""
        # Reachability is recomputed: a snapshot committed since the plan was
        # made may have started to use one of them.
        fresh = plan_gc(self.vault, grace_seconds=self.grace_seconds)
        still = {o for o, _ in fresh.objects}
        deleted, freed = 0, 0
        for oid, size in self.objects:
            if oid in still:
                self.vault.store.delete(oid)
                deleted += 1
                freed += size
        with self.vault.catalog.begin() as conn:
            self.vault.catalog.append_event(conn, "gc", "store", self.vault.store.url,
                                            after={"deleted": deleted, "bytes": freed, "vaults": self.vaults})
        return {"deleted": deleted, "bytes": freed}


def plan_gc(vault, *, grace_seconds: float = 3600) -> GcPlan:
    from lensvault.vault import open_vault

    keep = reachable_oids(vault) | vault.store.pinned(grace_seconds)
    vaults = [str(vault.root)]
    notes: list[str] = []
    # A shared store is used by other vaults too; what they need is kept.
    registered = getattr(vault.store, "registered_vaults", lambda: [])()
    for info in registered:
        if info.get("vault_id") == vault.config.vault_id:
            continue
        path = info.get("path", "")
        if not os.path.isdir(os.path.join(path, ".lensvault")):
            notes.append(f"vault {path} is registered with the store but gone; its objects are not protected")
            continue
        try:
            with open_vault(path) as other:
                keep |= reachable_oids(other)
            vaults.append(path)
        except Exception as e:
            raise CatalogError(
                f"another vault that shares this store cannot be read ({e})",
                where=path,
                fix="repair that vault, or remove its entry from the store's vaults/ folder if it is gone for good",
            ) from e
    now = time.time()
    candidates, total, kept = [], 0, 0
    for oid in vault.store.iter_oids():
        if oid in keep:
            kept += 1
            continue
        try:
            st = os.stat(vault.store.oid_to_path(oid))
        except FileNotFoundError:
            continue
        if now - st.st_ctime < grace_seconds:
            kept += 1  # possibly written by a snapshot that has not committed yet
            continue
        candidates.append((oid, st.st_size))
        total += st.st_size
    return GcPlan(vault, candidates, total, kept, grace_seconds, vaults, notes)
