"""``lensvault status --remote``: what this vault has that a remote lacks (not pushed), and what the
remote has that this vault lacks (not pulled).

Records are compared by oid: a push writes a record's journal entry on the remote under the
same name as in this vault's ledger, and a pull the other way round. Costs a bounded number
of requests, whatever the size of the history: one listing of the remote's ``journal/`` and
one of ``refs/`` (1,000 names a request), one GET per alias both sides have, and — only where
another vault pushed a version under a name this vault also used — a GET of that ref (and of
its record, for a dataset version, to compare snapshots). Remote records other than versions,
models and configs are known by kind and oid only (their names are inside them; reading them
would be one request each): they are counted by kind.

Aliases are compared by the version they point at, not by every move (one GET of the alias
ref each, and of its move record when it is not one of this vault's): a pull adopts a remote
alias by moving the local one (a move of this vault's own), and remembers the remote move it
saw (``remotes/seen.py``); an alias that points elsewhere there is not pulled if that move is
one this vault has not seen, not pushed if this vault's latest move is not on the remote — and
a conflict, in neither list, when both are true (moved on both sides since they agreed).
Event batches (``events`` records) are history, not state: this vault's unpushed ones are
counted apart and do not make the two differ; another vault's (``fetch`` and ``clone`` bring
them) are not counted. """

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lensvault.remotes.closure import REF_KINDS, LedgerRecord, parse_journal
from lensvault.remotes.reach import label

if TYPE_CHECKING:
    from lensvault.vault import Vault

__all__ = ["RemoteStatus", "remote_status"]

_KIND = {"dataset.version": "dataset version", "model.version": "model version", "config": "config"}


@dataclass
class RemoteStatus:
    remote: str
    url: str
    # {"kind", "name", "records"}: kind is dataset version, model version, config, run, evaluation,
    # or alias (then "to": the version it points at here)
    not_pushed: list[dict[str, Any]] = field(default_factory=list)
    # {"kind", "name"} for versions, models, configs and aliases (named by the remote's refs);
    # {"kind": <record kind>, "name": None, "records", "oids"} for the other records
    not_pulled: list[dict[str, Any]] = field(default_factory=list)
    # the same NAME@VERSION made here and there: {"ref", "ours", "theirs", "same_content"}
    same_name: list[dict[str, Any]] = field(default_factory=list)
    # this vault's event batches the remote lacks (its own history: `push --all` sends them; they
    # change no version, run, model or alias, so they do not make the two differ)
    events_not_pushed: int = 0
    # what neither a push nor a pull settles: an alias moved here and there since they last agreed
    # ({"kind": "alias", "name", "here": version, "remote": version}), and a version made here and
    # there with other content ({"kind": "dataset version"|…, "name", "here": oid, "remote": oid});
    # such an alias is in neither list above
    conflicts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def in_sync(self) -> bool:
        return not (self.not_pushed or self.not_pulled or self.conflicts)

    def to_dict(self) -> dict[str, Any]:
        return {"remote": self.remote, "url": self.url, "in_sync": self.in_sync, "not_pushed": self.not_pushed,
                "not_pulled": self.not_pulled, "conflicts": self.conflicts, "same_name": self.same_name,
                "events_not_pushed": self.events_not_pushed}


def remote_status(vault: Vault, remote: str | None = None, *, jobs: int = 32) -> RemoteStatus:
    from lensvault.remotes.config import open_remote
    from lensvault.remotes.ledgers import local_ledger

    spec, rs = open_remote(vault, remote, jobs=jobs)
    out = RemoteStatus(spec.name, rs.url)
    local = local_ledger(vault)
    there_journal: dict[str, str] = {}  # record oid -> kind
    for name in rs.list_refs("journal"):
        entry = parse_journal(name)
        if entry is not None:
            there_journal[entry.oid] = entry.kind
    there_refs = set(rs.list_refs("refs"))
    here = {r.oid for r in local.records}
    _not_pushed(vault, rs, local.records, local.refs, there_journal, there_refs, out)
    _not_pulled(local.refs, here, there_journal, there_refs, out)
    _aliases(vault, rs, local.records, local.refs, there_journal, there_refs, out)
    return out


def _not_pushed(vault: Vault, rs, records: list[LedgerRecord], refs: dict[str, str], there_journal: dict[str, str],
                there_refs: set[str], out: RemoteStatus) -> None:
    runs: dict[str, int] = {}
    events = 0
    for rec in records:
        if rec.oid in there_journal or rec.kind == "alias.move":
            continue  # (aliases: by where they stand, below)
        ref = rec.ref()
        if ref is not None:
            if refs.get(ref) != rec.oid:
                continue  # a record that lost a race for its name here: never pushed, never needed
            if ref in there_refs:
                theirs = (rs.get_ref(ref) or b"").decode().strip()
                if theirs != rec.oid:
                    same = _same_snapshot(rs, rec, theirs)
                    out.same_name.append({"ref": ref, "ours": rec.oid, "theirs": theirs, "same_content": same})
                    if not same:
                        out.conflicts.append({"kind": _KIND[rec.kind], "name": label(rec), "here": rec.oid,
                                              "remote": theirs})
                    continue
            out.not_pushed.append({"kind": _KIND[rec.kind], "name": label(rec), "records": 1})
        elif rec.kind == "evaluation":
            out.not_pushed.append({"kind": "evaluation", "name": label(rec), "records": 1})
        elif rec.kind == "events":
            events += 1
        else:
            for rid in sorted(rec.run_ids()) or [rec.kind]:
                runs[rid] = runs.get(rid, 0) + 1
    out.not_pushed += [{"kind": "run", "name": rid, "records": n} for rid, n in sorted(runs.items())]
    out.events_not_pushed = events


def _same_snapshot(rs, rec: LedgerRecord, theirs: str) -> bool:
    """Whether the remote's record of this dataset version has our snapshot (two vaults made it alike)."""
    if rec.kind != "dataset.version" or not theirs:
        return False
    from lensvault.errors import LensVaultError
    from lensvault.remotes.ledgers import parse_record

    try:
        doc = parse_record(rs.get_raw(theirs), theirs, rs.location(theirs))
    except LensVaultError:
        return False  # unreadable there: `verify --remote` names it
    return bool(doc["data"]["row"]["snapshot_id"] == rec.data["row"]["snapshot_id"])


def _not_pulled(refs: dict[str, str], here: set[str], there_journal: dict[str, str], there_refs: set[str],
                out: RemoteStatus) -> None:
    for ref in sorted(there_refs):
        parts = ref.split("/")
        if parts[1] == "aliases" or ref in refs:
            continue
        if parts[1] == "configs" and len(parts) == 3:
            out.not_pulled.append({"kind": "config", "name": parts[2]})
        elif len(parts) == 4 and parts[1] in ("datasets", "models"):
            kind = "dataset version" if parts[1] == "datasets" else "model version"
            out.not_pulled.append({"kind": kind, "name": f"{parts[2]}@{parts[3]}"})
    others: dict[str, list[str]] = {}
    for oid, kind in there_journal.items():
        if oid in here or kind in REF_KINDS or kind in ("alias.move", "events"):
            continue
        others.setdefault(kind, []).append(oid)
    for kind, oids in sorted(others.items()):
        out.not_pulled.append({"kind": kind, "name": None, "records": len(oids), "oids": sorted(oids)})


def _aliases(vault: Vault, rs, records: list[LedgerRecord], refs: dict[str, str], there_journal: dict[str, str],
             there_refs: set[str], out: RemoteStatus) -> None:
    from lensvault.remotes.seen import seen_at

    by_oid = {r.oid: r for r in records}
    ours = {ref: oid for ref, oid in refs.items() if ref.startswith("refs/aliases/")}
    theirs_names = {ref for ref in there_refs if ref.startswith("refs/aliases/")}
    for ref in sorted(set(ours) | theirs_names):
        _, _, name, alias = ref.split("/", 3)
        mine = ours.get(ref)
        to = by_oid[mine].data["move"]["to_version"] if mine in by_oid else None
        if ref not in theirs_names:
            out.not_pushed.append({"kind": "alias", "name": f"{name}@{alias}", "to": to, "records": 1})
            continue
        if mine is None:
            out.not_pulled.append({"kind": "alias", "name": f"{name}@{alias}"})
            continue
        theirs = (rs.get_ref(ref) or b"").decode().strip()
        there = _points_at(rs, by_oid, theirs)
        if theirs == mine or there == to:
            continue  # (a pull adopts the remote's alias by a move of this vault's own, to the same version)
        known = theirs in by_oid or seen_at(vault, rs.url, name, alias, theirs) is not None
        pushed = mine in there_journal
        if not known and not pushed:  # moved on both sides since they agreed: a push would lose the race
            out.conflicts.append({"kind": "alias", "name": f"{name}@{alias}", "here": to, "remote": there})
        elif not known:
            out.not_pulled.append({"kind": "alias", "name": f"{name}@{alias}", "to": there})
        else:
            out.not_pushed.append({"kind": "alias", "name": f"{name}@{alias}", "to": to, "records": 1})


def _points_at(rs, by_oid: dict[str, LedgerRecord], move: str) -> str | None:
    """The version an alias move record (this vault's, or read from the remote) points at."""
    from lensvault.errors import LensVaultError
    from lensvault.remotes.ledgers import parse_record

    if move in by_oid:
        return str(by_oid[move].data["move"]["to_version"])
    try:
        doc = parse_record(rs.get_raw(move), move, rs.location(move))
    except LensVaultError:
        return None  # unreadable there: `verify --remote` names it
    return str(doc["data"]["move"]["to_version"])
