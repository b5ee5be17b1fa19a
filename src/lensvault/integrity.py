"""Verify (re-hash what the catalog names) and gc (plan, then delete the unreachable)."""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lensvault.datasets.needs import all_versions as _all_versions
from lensvault.datasets.needs import needed_compact as _needed_compact
from lensvault.datasets.needs import object_refs as _object_refs
from lensvault.datasets.needs import owners_in_versions as _owners_in_versions
from lensvault.datasets.needs import version_objects as _version_objects
from lensvault.errors import CatalogError, StorageError
from lensvault.grace import DEFAULT_GRACE_SECONDS, SAFE_GRACE_SECONDS
from lensvault.oid_set import CHUNK, OidSet
from lensvault.progress import NO_PROGRESS

if TYPE_CHECKING:
    from lensvault.vault import Vault

__all__ = ["GcPlan", "GcResult", "VerifyReport", "collect_garbage", "plan_gc", "reachable_oids", "verify"]


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
    repaired: list[dict] | None = None  # with repair: what got good bytes back, and from where
    # Not here, but needed only by records ``lensvault fetch`` brought without their data: on the
    # remote (each with its "remote"); not a fault (remotes/promised.py).
    remote_only: list[dict] = field(default_factory=list)
    checked_oids: OidSet = field(default_factory=OidSet, repr=False)  # what this pass checked (repair's next skips it)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.corrupt or self.manifest_files or self.catalog_problem)

    def to_dict(self) -> dict:
        d = {"ok": self.ok, "checked": self.checked, "missing": self.missing, "corrupt": self.corrupt,
             "manifest_files": self.manifest_files,
             "catalog": {"used": not self.catalog_skipped, "problem": self.catalog_problem,
                         "skipped": self.catalog_skipped},
             "unproven": self.unproven, "remote_only": self.remote_only}
        if self.repaired is not None:
            d["repaired"] = self.repaired
        return d

    def apply(self, result) -> None:
        """Take a repair's result in: what was repaired leaves the lists; a corrupt object that
        was set aside is now missing (with where its bytes went and the fix)."""
        done = {r["oid"] for r in result.repaired}
        failed = {f["oid"]: f for f in result.failed}
        self.repaired = result.repaired
        self.missing = [dict(m, **_hint(failed.get(m["oid"]))) for m in self.missing if m["oid"] not in done]
        still = []
        for c in self.corrupt:
            f = failed.get(c["oid"])
            if c["oid"] in done:
                continue
            if f and f.get("quarantined"):
                self.missing.append({"oid": c["oid"], "needed_by": c["needed_by"], **_hint(f)})
            else:
                still.append(dict(c, **_hint(f)))
        self.corrupt = still


def _hint(failure: dict | None) -> dict:
    if not failure:
        return {}
    return {k: failure[k] for k in ("fix", "quarantined", "paths") if failure.get(k)}




CATALOG_ONLY = [
    "objects only the catalog names (what was written before the store kept a ledger)",
    "whether each catalog version still has its manifest file in data/manifests/",
]


def verify(vault: Vault, ref: str | None = None, *, repair: bool = False, sources=(), progress=NO_PROGRESS,
           use_catalog: bool = True) -> VerifyReport:
    """Re-hash objects. Without a usable catalog (or with ``use_catalog=False``) the store is
    checked alone: every object, and everything the ledger and the stored manifests need.
    With ``repair``, what is missing or corrupt is restored from ``sources`` (folders, vaults,
    stores) and the recorded sources (lensvault.repair)."""
    report = _verify(vault, ref, progress, use_catalog)
    if not repair:
        return report
    from lensvault.repair import repair as run_repair

    report.repaired = []
    checked = report.checked_oids
    pending = report
    for round_ in range(4):
        if round_ < 3 and (pending.missing or pending.corrupt):
            pending.apply(run_repair(vault, pending, sources=sources, progress=progress))
        if pending is not report:
            report.repaired += pending.repaired or []
            report.missing += pending.missing
            report.corrupt += pending.corrupt
            report.remote_only += pending.remote_only
        if round_ == 3 or not pending.repaired:
            break
        # A manifest or table put back names objects nobody could list before: check those too.
        pending = _verify(vault, ref, progress, use_catalog, skip=checked)
        checked = checked | pending.checked_oids
        report.checked += pending.checked
    if not report.catalog_skipped:
        report.manifest_files = _check_manifest_files(vault, ref)
    return report


def _verify(vault: Vault, ref: str | None, progress, use_catalog: bool, skip: OidSet | None = None) -> VerifyReport:
    """One pass of ``verify``. Memory does not hold a Python object per file (issue 16): the files
    tables' objects are one ``OidSet``, checked a chunk at a time; what needs an object is looked
    up only for the few that fail."""
    from lensvault.store_facts import store_needs

    skip = skip if skip is not None else OidSet()
    problem = None
    facts = None
    named: dict[str, list[str]] = {}  # the objects versions, runs, models… name themselves
    files = OidSet()  # the objects the versions' files tables list
    if use_catalog or ref is not None:
        try:
            named, files = _needed_compact(vault, ref)
        except CatalogError as e:
            if ref is not None:
                raise
            problem = f"{e.what} — {e.fix}" if e.fix else e.what
    if ref is None:
        # Versions the catalog listed are skipped by their manifests: their files are known.
        more, facts = store_needs(vault, skip_manifests=set(named), strict=False)
        for oid, owners in more.items():
            named.setdefault(oid, []).extend(owners)
    # Not an object id: reported missing, as before (once: a repair's later passes skip them).
    odd = [] if len(skip) else sorted(o for o in named if len(o) != 64)
    wanted = (files | OidSet.of(o for o in named if len(o) == 64)) - skip
    unreferenced = OidSet()
    if ref is None:
        # Objects nobody references are still checked: a corrupt one would
        # poison the next snapshot that dedupes against it.
        unreferenced = _unreferenced(vault.store.iter_oids(), wanted | skip)
    report = VerifyReport(checked=len(odd) + len(wanted) + len(unreferenced), catalog_problem=problem)
    report.checked_oids = wanted | unreferenced
    missing: list[str] = []
    corrupt: list[str] = []
    with progress.task("Verifying", report.checked) as advance:
        for chunk in itertools.chain([odd] if odd else [], wanted.chunks(), unreferenced.chunks()):
            learned: dict = {}
            for oid, (result, key) in vault.store.check_many(chunk, on_done=advance):
                if result == "missing":
                    missing.append(oid)
                elif result == "corrupt":
                    corrupt.append(oid)
                elif key is not None:
                    learned[oid] = key
            # What hashed right is trusted by link checkouts until it changes (store/verified.py).
            vault.verified.add(learned)
    listed_by = _owners_in_versions(vault, ref, [o for o in missing + corrupt if o in files])

    def needed_by(oid: str) -> list[str]:
        return sorted(set(named.get(oid, [])) | set(listed_by.get(oid, [])))

    report.missing = [{"oid": oid, "needed_by": needed_by(oid)} for oid in missing]
    report.corrupt = [{"oid": oid, "needed_by": needed_by(oid), "path": vault.store.local_path(oid)}
                      for oid in corrupt]
    if report.missing:
        from lensvault.remotes.promised import split_remote_only

        report.missing, report.remote_only = split_remote_only(vault, report.missing)
    vault.verified.forget(c["oid"] for c in report.corrupt)
    if ref is None and use_catalog and not problem:
        report.catalog_problem = _catalog_gaps(vault, facts)
    if ref is None and (problem or not use_catalog):
        report.catalog_skipped = list(CATALOG_ONLY)
        assert facts is not None  # read above: ref is None
        report.unproven = facts.unproven
        report.manifest_files = [{"ref": u["where"], "path": str(vault.root / u["where"]), "problem": "unproven",
                                  "fix": "restore the file from Git, or remove it if it is not a version of this vault"}
                                 for u in facts.unproven if u["what"] == "manifest file"]
    else:
        report.manifest_files = _check_manifest_files(vault, ref)
    return report


def _unreferenced(listed, known: OidSet) -> OidSet:
    """The store's objects (``listed``, names) that are not in ``known``, read a chunk at a time."""
    listed = iter(listed)

    def parts():
        while names := list(itertools.islice(listed, CHUNK)):
            yield OidSet.of(o for o, is_known in zip(names, known.contains(names)) if not is_known)

    return OidSet.union(parts())


def _catalog_gaps(vault: Vault, facts) -> str | None:
    """Versions the store proves that the catalog does not list (a catalog restored from an older
    copy, or rows removed behind its triggers' back, as TRUNCATE on PostgreSQL does). Not those
    of a write killed before its COMMIT: gc removes what it left (lensvault.unfinished)."""
    from lensvault.catalog.repos.models import ModelRepo
    from lensvault.unfinished import find

    killed = {i["oid"] for u in find(vault) for i in u.undone}
    with vault.catalog.read() as conn:
        models = ModelRepo(conn).refs()
    datasets = {(v.name, v.version) for v in _all_versions(vault)}
    killed_manifests = {rec["data"]["row"]["manifest_oid"] for e, rec in facts.records
                        if e.oid in killed and rec.get("kind") == "dataset.version"}
    lost = [f"{n}@{v}" for (n, v), pv in sorted(facts.versions.items())
            if (n, v) not in datasets and pv.manifest_oid not in killed_manifests]
    for _entry, rec in facts.records:
        if _entry.oid in killed:
            continue
        if rec.get("kind") == "model.version":
            row = rec["data"]["row"]
            if (row["name"], row["version"]) not in models:
                lost.append(f"{row['name']}@{row['version']}")
    if not lost:
        return None
    shown = ", ".join(lost[:10]) + (f" … and {len(lost) - 10} more" if len(lost) > 10 else "")
    return (f"the catalog lacks {len(lost)} version(s) the store proves: {shown} — "
            "`lensvault catalog rebuild --force` brings them back")


def _check_manifest_files(vault: Vault, ref):
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


def reachable_oids(vault: Vault) -> OidSet:
    """Every object something in this vault needs (gc keeps them), as an ``OidSet``."""
    from lensvault.errors import IntegrityError

    named: set[str] = set()
    files = OidSet()
    catalog_manifests = set()
    for rec in _all_versions(vault):
        catalog_manifests.add(rec.manifest_oid)
        named.update((rec.manifest_oid, rec.snapshot_id))
        try:
            own, listed = _version_objects(vault, rec)
        except Exception as e:
            # Not knowing what a version needs means not knowing what is garbage.
            raise IntegrityError(
                f"cannot list the objects of {rec.ref} ({e})",
                where=rec.ref,
                fix=f"run `lensvault verify {rec.ref}` and restore the damaged object before gc",
            ) from e
        named |= own
        files = files | listed
    named.update(_object_refs(vault))
    # The store's own proof is a root too, whatever the catalog says: every ledger record and
    # what it keeps, every version the ledger or data/manifests/ proves (and what a manifest
    # file there names). A wrong or partial catalog cannot make gc delete a version's objects.
    from lensvault.store_facts import store_needs

    named.update(store_needs(vault, skip_manifests=catalog_manifests)[0])
    # (a name that is not an object id matches no stored object)
    return files | OidSet.of(o for o in named if len(o) == 64)


UNFINISHED = "unfinished catalog write"


@dataclass
class GcPlan:
    vault: Vault
    objects: list[tuple[str, int]]
    bytes: int
    kept: int
    grace_seconds: float
    vaults: list[str]
    notes: list[str]
    leftovers: list = field(default_factory=list)  # store.leftovers.Leftover: what killed writers left
    cached: list = field(default_factory=list)  # Leftover: thumbnails, masks of objects gone (image_cache)

    def to_dict(self) -> dict:
        return {"objects": len(self.objects), "bytes": self.bytes, "kept": self.kept, "vaults": self.vaults,
                "grace_seconds": self.grace_seconds, "notes": self.notes,
                "leftovers": [x.to_dict() for x in self.leftovers],
                "leftover_bytes": sum(x.bytes for x in self.leftovers),
                "cached_pictures": len(self.cached), "cached_picture_bytes": sum(x.bytes for x in self.cached)}

    def execute(self) -> dict:
        """Delete the planned objects that are still unreachable now, and the leftovers."""
        from lensvault.store.leftovers import remove

        store = self.vault.store
        deleted, freed = 0, 0
        # Under the gc lock no write commits: reachability and pins are read afresh (a snapshot
        # committed since the plan was made may have started to use one of the objects), and
        # whatever is deleted here is found missing by a commit that comes after.
        with store.gc_lock():
            fresh = plan_gc(self.vault, grace_seconds=self.grace_seconds, force=True)
            still = {o for o, _ in fresh.objects}
            for oid, size in self.objects:
                if oid in still:
                    store.delete(oid)
                    deleted += 1
                    freed += size
        planned = {x.path for x in self.leftovers}
        if any(x.kind == "run data folder" for x in self.leftovers):
            from lensvault.runs.crashes import reap_dead_runs

            reap_dead_runs(self.vault)  # a crashed run's partial log is kept as its log first
        if any(x.kind == UNFINISHED for x in self.leftovers):
            from lensvault import unfinished

            unfinished.finish(self.vault, unfinished.find(self.vault, grace_seconds=self.grace_seconds))
        # (An unfinished write's intent is a ref, removed by ``finish`` through the store.)
        gone = [x for x in fresh.leftovers if x.path in planned]
        removed, removed_bytes = remove([x for x in gone if x.kind != UNFINISHED])
        removed += sum(1 for x in gone if x.kind == UNFINISHED)
        # Pictures made from objects that are gone now (these, or ones deleted earlier): read again
        # after the deletion, so a picture of an object a writer started to use again stays.
        from lensvault.image_cache import stale

        pictures, picture_bytes = remove(stale(self.vault, set(), self.grace_seconds))
        # The event is appended after the lock is released: a writer waiting on the lock may
        # hold the catalog's write lock (SQLite), and gc must never wait on it while holding ours.
        with self.vault.catalog.begin() as conn:
            self.vault.catalog.append_event(conn, "gc", "store", store.url,
                                            after={"deleted": deleted, "bytes": freed, "vaults": self.vaults,
                                                   "leftovers": removed, "leftover_bytes": removed_bytes,
                                                   "cached_pictures": pictures})
        return {"deleted": deleted, "bytes": freed, "leftovers": removed, "leftover_bytes": removed_bytes,
                "cached_pictures": pictures, "cached_picture_bytes": picture_bytes}


@dataclass(frozen=True)
class GcResult:
    """``gc``: the plan, and what executing it deleted (None when it was not executed);
    ``force`` (not part of the JSON): the plan was made with ``--force``, which a rerun needs too."""

    plan: GcPlan
    executed: dict | None = None
    force: bool = False

    def to_dict(self) -> dict:
        return {"plan": self.plan.to_dict(), "executed": self.executed}


def collect_garbage(vault: Vault, *, grace_seconds: float = DEFAULT_GRACE_SECONDS, force: bool = False,
                    delete: bool = False) -> GcResult:
    plan = plan_gc(vault, grace_seconds=grace_seconds, force=force)
    done = plan.execute() if delete and (plan.objects or plan.leftovers or plan.cached) else None
    return GcResult(plan, done, force)


def plan_gc(vault: Vault, *, grace_seconds: float = DEFAULT_GRACE_SECONDS, force: bool = False) -> GcPlan:
    from lensvault.errors import ObjectMissing, UsageError

    if grace_seconds < SAFE_GRACE_SECONDS and not force:
        raise UsageError(
            f"a grace period under {SAFE_GRACE_SECONDS} s can delete what a writer on another machine "
            "sharing the store has not committed yet",
            where=f"--grace {grace_seconds:g}",
            fix=f"use --grace {SAFE_GRACE_SECONDS} or more, or add --force if no other machine writes to this store",
        )
    keep = reachable_oids(vault)
    vaults = [str(vault.root)]
    notes: list[str] = []
    # A shared store is used by other vaults too; what they need is kept.
    registered = vault.store.vaults()
    for info in registered:
        if info.get("vault_id") == vault.config.vault_id:
            continue
        if info.get("unreadable"):
            # Another vault's needs are unknown: deleting now could take its versions' objects.
            raise StorageError(
                "a vault sharing this store is registered in a file that cannot be read, so what it needs is unknown",
                where=info["unreadable"],
                fix='write {"vault_id": "<its id>", "path": "<its folder>"} into that file, or delete the file if '
                    "that vault is gone for good; then run gc again",
            )
        path = info.get("path", "")
        if not os.path.isdir(os.path.join(path, ".lensvault")):
            notes.append(f"vault {path} is registered with the store but gone; its objects are not protected")
            continue
        try:
            with vault.open_other(path) as other:  # as the same actor
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
    listed = iter(vault.store.iter_oids())
    while names := list(itertools.islice(listed, CHUNK)):
        for oid, reachable in zip(names, keep.contains(names)):
            if reachable:
                kept += 1
                continue
            try:
                st = vault.store.stat(oid)
            except ObjectMissing:
                continue
            if now - st.stored_at < grace_seconds:
                kept += 1  # possibly written by a snapshot that has not committed yet
                continue
            candidates.append((oid, st.size))
    # Pins are read after the objects are listed: a writer pins an object before renaming
    # it into place, so every object listed above that a writer relies on is pinned by now.
    pinned = vault.store.pinned(grace_seconds)
    out = []
    for oid, size in candidates:
        if oid in pinned:
            kept += 1
        else:
            out.append((oid, size))
            total += size
    from lensvault.image_cache import stale

    return GcPlan(vault, out, total, kept, grace_seconds, vaults, notes, _leftovers(vault, grace_seconds),
                  stale(vault, {oid for oid, _ in out}, grace_seconds))


def _leftovers(vault: Vault, grace_seconds: float) -> list:
    """Temp files and staging folders of writers that are gone (see store/leftovers.py)."""
    from lensvault.runs.crashes import leftover_work_dirs
    from lensvault.store.leftovers import Leftover, scan_files, staging_leftovers
    from lensvault.unfinished import find

    found = list(vault.store.leftovers(grace_seconds))
    found += leftover_work_dirs(vault, grace_seconds)
    # Writes killed before their catalog COMMIT: what they left in the ledger is undone.
    found += [Leftover(vault.store.ref_location(u.name), UNFINISHED, 0, u.age_seconds)
              for u in find(vault, grace_seconds=grace_seconds)]
    found += staging_leftovers(vault.dir / "staging", grace_seconds)
    found += scan_files(vault.dir, "scratch folder", grace_seconds, match=lambda n: n.startswith("fix-"))
    found += scan_files(vault.dir / "cache", "cache temp file", grace_seconds, match=lambda n: n.endswith(".tmp"))
    for sub in ("index", "delta", "listing", "verified", "areas", "snapshots"):
        found += scan_files(vault.dir / "cache" / sub, "cache temp file", grace_seconds,
                            match=lambda n: n.endswith(".tmp"))
    try:
        folders = [e.path for e in os.scandir(vault.manifests_dir) if e.is_dir()]
    except OSError:
        folders = []
    for d in folders:
        found += scan_files(d, "manifest temp file", grace_seconds,
                            match=lambda n: n.startswith(".") and n.endswith(".tmp"))
    return found
