"""``lensvault gc --remote NAME``: delete the objects on a remote that nothing there names.

The rule (docs/design.md, "Remotes"): an object is kept if any journal entry or ref on the
remote reaches it (``remotes/reach.py``: versions with their manifests, tables and files,
runs, models, configs, alias moves, evaluations, event batches), or if the server wrote it
less than the grace period ago (default one hour) — measured by the server's clock, from the
last-modified time the listing gives. Everything else was left by a push that did not finish
(objects go up before the records and refs that name them) and is deleted.

Why that keeps a concurrent push safe: a push uploads objects, then records, then refs and
journal entries. Until its journal entries are written, its objects are named by nothing,
but they are younger than the grace period while the push runs, so gc keeps them. A push
longer than the grace period between its first upload and its last ref could lose an object
to a gc running meanwhile; so could a push that finds an orphan older than the grace period
already there (left by an earlier interrupted push) and relies on it. Execution re-plans
first and, after deleting, lists the journal again: a record written meanwhile that needs a
deleted object is reported with the fix (push it again from a vault that has it). What such a
record needs is read from the remote, so a deleted manifest is named for the files it listed.

Nothing is deleted without ``--yes``; the plan says what would go and how many bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lensvault.errors import IntegrityError, UsageError
from lensvault.grace import DEFAULT_GRACE_SECONDS
from lensvault.progress import NO_PROGRESS
from lensvault.remotes.reach import Reach, reach, require_remote

if TYPE_CHECKING:
    from lensvault.store.remote import RemoteStore
    from lensvault.vault import Vault

__all__ = ["REMOTE_GRACE_SECONDS", "RemoteGcPlan", "RemoteGcResult", "collect_remote_garbage", "plan_remote_gc"]

# An hour (the default of both gcs): longer than a push takes between its first object and its
# last ref, on any link we expect; on a remote, shorter needs --force (only when no push can be running).
REMOTE_GRACE_SECONDS = DEFAULT_GRACE_SECONDS


@dataclass
class RemoteGcPlan:
    remote: str
    url: str
    grace_seconds: float
    objects: list[dict[str, Any]] = field(default_factory=list)  # {"oid", "key", "size", "age_seconds"}
    bytes: int = 0
    kept: int = 0  # objects some record or ref reaches
    young: int = 0  # objects nothing names yet, younger than the grace period (a push may be running)
    young_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"remote": self.remote, "url": self.url, "grace_seconds": self.grace_seconds,
                "objects": self.objects, "bytes": self.bytes, "kept": self.kept, "young": self.young,
                "young_bytes": self.young_bytes}


@dataclass
class RemoteGcResult:
    plan: RemoteGcPlan
    executed: dict[str, Any] | None = None  # {"deleted", "bytes", "needed_after": [...]}
    force: bool = False

    @property
    def ok(self) -> bool:
        return not (self.executed and self.executed["needed_after"])

    def to_dict(self) -> dict[str, Any]:
        return {"plan": self.plan.to_dict(), "executed": self.executed}


def _check_grace(grace_seconds: float, force: bool) -> None:
    if grace_seconds < REMOTE_GRACE_SECONDS and not force:
        raise UsageError(
            f"a grace period under {REMOTE_GRACE_SECONDS:g} s can delete the objects of a push that is still "
            "running on another machine", where=f"--grace {grace_seconds:g}",
            fix=f"use --grace {REMOTE_GRACE_SECONDS:g} or more, or add --force if no push to this remote can be running")


def _known(r: Reach, rs: RemoteStore) -> None:
    """What a record needs is unknown if the record (or a version's manifest or files table) cannot be read."""
    if not r.problems:
        return
    oid, p = min(r.problems.items())
    more = f" (and {len(r.problems) - 1} more)" if len(r.problems) > 1 else ""
    raise IntegrityError(
        f"the {p['what']} {oid[:12]}… on the remote is {p['problem']}{more}, so what "
        f"{', '.join(p['needed_by'][:3])} needs is unknown; nothing was deleted", where=rs.location(oid),
        fix="run `lensvault verify --remote` to see every damaged object, repair them from a vault that has them "
            "(`lensvault push --all --check-remote`), then run gc again", oid=oid)


def _plan(rs: RemoteStore, spec_name: str, grace_seconds: float, progress) -> tuple[RemoteGcPlan, Reach]:
    require_remote(rs)  # (server_time writes a marker: never into a location that is not a remote)
    r = reach(rs, progress=progress)
    _known(r, rs)
    listing = list(rs.list_objects())
    now = rs.server_time()  # after the listing: an object listed is never younger than "now"
    plan = RemoteGcPlan(spec_name, rs.url, grace_seconds)
    for o in listing:
        if o.oid in r.needs:
            plan.kept += 1
            continue
        age = max(0.0, now - o.last_modified)
        if age < grace_seconds:
            plan.young += 1
            plan.young_bytes += o.size
            continue
        plan.objects.append({"oid": o.oid, "key": rs.location(o.oid), "size": o.size, "age_seconds": round(age)})
        plan.bytes += o.size
    plan.objects.sort(key=lambda x: x["oid"])
    return plan, r


def plan_remote_gc(vault: Vault, remote: str, *, grace_seconds: float = REMOTE_GRACE_SECONDS, force: bool = False,
                   jobs: int = 32, progress=NO_PROGRESS) -> RemoteGcPlan:
    from lensvault.remotes.config import open_remote

    _check_grace(grace_seconds, force)
    spec, rs = open_remote(vault, remote, jobs=jobs)
    return _plan(rs, spec.name, grace_seconds, progress)[0]


def collect_remote_garbage(vault: Vault, remote: str, *, grace_seconds: float = REMOTE_GRACE_SECONDS,
                           force: bool = False, delete: bool = False, jobs: int = 32,
                           progress=NO_PROGRESS) -> RemoteGcResult:
    from lensvault.remotes.config import open_remote

    _check_grace(grace_seconds, force)
    spec, rs = open_remote(vault, remote, jobs=jobs)
    plan, _ = _plan(rs, spec.name, grace_seconds, progress)
    if not delete or not plan.objects:
        return RemoteGcResult(plan, None, force)
    # Planned objects that are still garbage by a fresh look (a push may have finished since).
    fresh, seen = _plan(rs, spec.name, grace_seconds, NO_PROGRESS)
    still = {o["oid"] for o in fresh.objects}
    doomed = [o for o in plan.objects if o["oid"] in still]
    gone = {o["oid"] for o in doomed}
    with progress.task("Deleting objects", len(doomed)) as advance:
        for start in range(0, len(doomed), 1000):
            batch = doomed[start:start + 1000]
            rs.delete_objects([o["oid"] for o in batch])
            advance(len(batch))
    # Copies inside packs: the packs holding one are rewritten without it (new pack and index
    # first, the old ones deleted last, so a reader never meets a pack that lacks what it needs).
    repacked = rs.repack(lambda oid: oid not in gone, grace_seconds=0.0) if gone & rs.packed().keys() else {}
    executed: dict[str, Any] = {"deleted": len(doomed), "bytes": sum(o["size"] for o in doomed), "needed_after": [],
                                "packs_rewritten": repacked.get("packs_removed", 0),
                                "packs_written": repacked.get("packs_written", 0)}
    # A push that relied on an orphan older than the grace period and wrote its journal meanwhile:
    # say so now, with the fix, rather than leave a ref naming a missing object unnoticed.
    if set(rs.list_refs("journal")) != set(seen.journal) or set(rs.list_refs("refs")) != set(seen.refs):
        after = reach(rs)
        executed["needed_after"] = sorted(
            ({"oid": oid, "key": rs.location(oid), "needed_by": sorted(who)}
             for oid, who in after.needs.items() if oid in gone), key=lambda x: x["oid"])
    return RemoteGcResult(plan, executed, force)
