"""``lensvault verify --remote [--hash]``: every object a remote's refs and records need is there.

Without ``--hash`` it costs what ``reach`` costs plus one listing of ``objects/``: an object
is missing if the listing lacks it, corrupt if the listing's size differs from what its
version's files table says. Records, manifests and files tables are read whole and hashed on
the way (they must be, to know what the versions need). ``--hash`` downloads every other
object on the remote — those nothing names too: a corrupt one would be taken for present by
the next push that sends the same bytes — and re-hashes it, streamed (bounded memory),
``jobs`` downloads in flight.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lensvault.progress import NO_PROGRESS
from lensvault.remotes.reach import reach, require_remote

if TYPE_CHECKING:
    from lensvault.store.remote import RemoteStore
    from lensvault.vault import Vault

__all__ = ["RemoteVerifyReport", "verify_remote"]


@dataclass
class RemoteVerifyReport:
    remote: str
    url: str
    hashed: bool  # --hash: every object's bytes were re-hashed
    checked: int = 0  # objects checked (needed ones, and with --hash every listed one)
    needed: int = 0
    records: int = 0
    refs: int = 0
    missing: list[dict[str, Any]] = field(default_factory=list)  # {"oid", "key", "what", "needed_by", "fix"}
    corrupt: list[dict[str, Any]] = field(default_factory=list)  # {"oid", "key", "what", "needed_by", "problem", "fix"}

    @property
    def ok(self) -> bool:
        return not (self.missing or self.corrupt)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "remote": self.remote, "url": self.url, "hashed": self.hashed, "checked": self.checked,
                "needed": self.needed, "records": self.records, "refs": self.refs, "missing": self.missing,
                "corrupt": self.corrupt}


def fix_missing(rs: RemoteStore) -> str:
    return ("in a vault that has it (with this remote added), run `lensvault push --all --check-remote` "
            "(it sends what the remote lacks)")


def fix_corrupt(rs: RemoteStore, oid: str, push_replaces: bool) -> str:
    """``push_replaces``: the remote's size is known to be wrong (push --check-remote replaces those)."""
    if push_replaces or oid in rs.packed():
        # (push --check-remote reads back and hashes every object whose only copy is in a pack,
        # and sends a damaged one again singly: readers take that copy)
        return ("in a vault that has it intact (with this remote added), run `lensvault push --all --check-remote` "
                "(it replaces objects whose size is wrong, and packed copies that do not hash)")
    return (f"delete {rs.location(oid)} (its bytes are damaged, its size is right, so a push cannot tell), then in a "
            "vault that has it intact run `lensvault push --all --check-remote`")


def verify_remote(vault: Vault, remote: str | None = None, *, hash: bool = False, jobs: int = 32,
                  progress=NO_PROGRESS) -> RemoteVerifyReport:
    from lensvault.remotes.config import open_remote

    spec, rs = open_remote(vault, remote, jobs=jobs)
    require_remote(rs)  # an empty location would otherwise pass as a remote with nothing wrong
    r = reach(rs, progress=progress)
    listing = {o.oid: o for o in rs.list_objects()}
    report = RemoteVerifyReport(spec.name, rs.url, hash, needed=len(r.needs), records=len(r.records),
                                refs=len(r.refs))

    def replaces(oid: str) -> bool:
        return oid in listing and _sized(vault, oid, listing[oid].size)

    def item(oid: str, what: str, needed_by) -> dict[str, Any]:
        return {"oid": oid, "key": rs.location(oid), "what": what, "needed_by": sorted(needed_by)}

    for oid, p in sorted(r.problems.items()):
        needed_by = r.needs.get(oid) or p["needed_by"]
        if p["problem"] == "missing":
            report.missing.append(dict(item(oid, p["what"], needed_by), fix=fix_missing(rs)))
        else:
            report.corrupt.append(dict(item(oid, p["what"], needed_by), problem=p.get("detail", "corrupt"),
                                       fix=fix_corrupt(rs, oid, replaces(oid))))
    to_hash: list[str] = []
    for oid in sorted(r.needs):
        if oid in r.problems:
            continue
        got = listing.get(oid)
        if got is None:
            report.missing.append(dict(item(oid, "object", r.needs[oid]), fix=fix_missing(rs)))
        elif oid in r.sizes and got.size != r.sizes[oid]:
            report.corrupt.append(dict(item(oid, "object", r.needs[oid]),
                                       problem=f"{got.size} bytes there, {r.sizes[oid]} recorded",
                                       fix=fix_corrupt(rs, oid, True)))
        elif hash and oid not in r.hashed:
            to_hash.append(oid)
    report.checked = len(r.needs)
    if hash:
        unnamed = sorted(o for o in listing if o not in r.needs)
        to_hash += unnamed
        report.checked += len(unnamed)
        _rehash(rs, to_hash, r.needs, report, replaces, progress)
    report.missing.sort(key=lambda x: x["oid"])
    report.corrupt.sort(key=lambda x: x["oid"])
    return report


def _sized(vault: Vault, oid: str, size: int) -> bool:
    """Whether this vault has the object, with another size than the remote's copy (so a push replaces it)."""
    from lensvault.errors import ObjectMissing

    try:
        return vault.store.stat(oid).size != size
    except ObjectMissing:
        return False


def _rehash(rs: RemoteStore, oids: list[str], needs: dict[str, set[str]], report: RemoteVerifyReport,
            replaces, progress) -> None:
    lock = threading.Lock()

    def one(oid: str) -> None:
        digest = rs.hash_object(oid)
        if digest == oid:
            return
        with lock:
            if digest is None:  # deleted since the listing
                if oid in needs:
                    report.missing.append({"oid": oid, "key": rs.location(oid), "what": "object",
                                           "needed_by": sorted(needs[oid]), "fix": fix_missing(rs)})
                return
            report.corrupt.append({"oid": oid, "key": rs.location(oid), "what": "object",
                                   "needed_by": sorted(needs.get(oid, ())),
                                   "problem": "its bytes do not hash to its name",
                                   "fix": fix_corrupt(rs, oid, replaces(oid))})

    with progress.task("Re-hashing the remote's objects", len(oids)) as advance:
        rs.run_many(one, oids, on_done=advance)
