"""``lensvault fetch``: a remote's records into this vault, their data objects left on the remote.

The same path as ``pull`` (remotes/fetch.py): read the remote's ledger (every record
hash-checked), take every record (closure ``--all``), refuse a write-once ref here that names
other content, replay the new records' rows through rebuild's replay in one transaction
with their ledger entries. What differs is which objects come:

- *here after fetch*: the record objects, and what the commands that only *read* about a
  record need — a dataset version's manifest, snapshot and tables (``dataset show/diff``,
  ``images``, and gc, which reads them to know what a version needs), a config's file, a
  run's environment, a model's bundle manifest;
- *left on the remote*: data — a version's files, a model's weights, a run's log and
  artifacts, an evaluation's predictions. Each new record gets a marker
  (remotes/promised.py), so ``verify`` reports those as "only on remote NAME", and
  ``dataset checkout``, ``model pull``, ``reproduce`` and ``VisionDataset`` fetch them when
  they need them (remotes/autofetch.py).

Aliases: one the remote has and this vault does not is created here where the remote's
points (as ``pull NAME@ALIAS`` does); one this vault has is its own decision and stays,
reported when it points elsewhere than the remote's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lensvault.errors import NotFound, RemoteConflict
from lensvault.progress import NO_PROGRESS
from lensvault.remotes.closure import LedgerRecord, needing, select
from lensvault.remotes.reach import label
from lensvault.remotes.results import FetchResult

if TYPE_CHECKING:
    from lensvault.vault import Vault

__all__ = ["fetch", "metadata_objects"]


def metadata_objects(rec: LedgerRecord) -> set[str]:
    """The small objects of a record that reading about it needs (besides a version's manifest
    and tables, which ``fetch._objects_of`` brings): a config's file, a run's environment, a
    model's bundle manifest."""
    d = rec.data
    row = d.get("row") or {}
    out = set()
    if rec.kind == "config" and isinstance(d.get("oid"), str):
        out.add(d["oid"])
    elif rec.kind == "run.environment" and d.get("environment_oid"):
        out.add(d["environment_oid"])
    elif rec.kind == "run.finish" and (d.get("values") or {}).get("environment_oid"):
        out.add(d["values"]["environment_oid"])
    elif rec.kind == "model.version" and row.get("bundle_oid"):
        out.add(row["bundle_oid"])
    return out


def fetch(vault: Vault, *, remote: str | None = None, jobs: int = 32, progress=NO_PROGRESS) -> FetchResult:
    from lensvault.remotes.config import open_remote
    from lensvault.remotes.fetch import (
        _objects_of,
        _replay,
        _require_remote,
        _write_manifest_files,
        download,
        new_records,
    )
    from lensvault.remotes.ledgers import local_ledger, remote_ledger
    from lensvault.remotes.promised import mark, record_needs

    spec, rs = open_remote(vault, remote, jobs=jobs)
    _require_remote(rs)
    theirs, raw = remote_ledger(rs, progress=progress)
    chosen = select(theirs, [], everything=True, where=f"the remote {spec.name} ({rs.url})")
    result = FetchResult(spec.name, rs.url)
    clashes: list[RemoteConflict] = []
    new = new_records(vault, chosen, local_ledger(vault), result.same_content, conflicts=clashes)
    left_out = _set_aside(chosen, theirs, clashes, rs.url, result)
    new = [r for r in new if r.oid not in left_out]
    # Records, and the manifests and tables of versions (read to list a version's files).
    oids, n, size = _objects_of(vault, rs, new, raw, progress)
    meta = sorted(set().union(*(metadata_objects(r) for r in new)) if new else set())
    got = download(vault.store, rs, meta, progress, "Fetching configs, environments, bundles")
    result.objects_fetched, result.bytes_fetched = n + got[0], size + got[1]
    result.records = len(new)
    left = set(vault.store.missing(oids))
    result.objects_on_remote = len(left)
    made: list[str] = []
    try:
        if new:
            # Marked: the records that need something left there (not metric batches, say).
            made = mark(vault, [r for r in new if record_needs(vault, r) & left], spec.name, rs.url)
            _write_manifest_files(vault, new)
            result.added = _replay(vault, new, "--all", spec.name, action="remote.fetch")
    except BaseException:
        for name in made:  # a fetch that did not commit leaves no marker (the records are not here)
            vault.store.delete_ref(name)
        raise
    finally:
        vault.store.release_pins()
    _aliases(vault, rs, theirs, spec.name, result, left_out)
    return result


def _set_aside(chosen: list[LedgerRecord], theirs, clashes: list[RemoteConflict], url: str,
               result: FetchResult) -> set[str]:
    """Report each clash (a name made here and there with other content) with what needs the
    remote's record of that name: those stay out too (taken in, they would name this vault's
    record). Returns the oids left out; everything else is fetched."""
    if not clashes:
        return set()
    by_oid = {r.oid: r for r in chosen}
    aliases = _alias_targets(theirs)
    for c in clashes:
        needers = needing(chosen, {c.details["remote"]}) - {c.details["remote"]}
        c.details["left_out"] = sorted({label(by_oid[o]) for o in needers} |
                                       {a for a, model in aliases.items() if model in needers})
        c.where = f"{url}/{c.where}"
        result.conflicts.append(c.to_dict())
    return needing(chosen, {c.details["remote"] for c in clashes})


def _alias_targets(theirs) -> dict[str, str | None]:
    """NAME@ALIAS -> the oid of the model version record the remote's alias points at."""
    by_oid = theirs.by_oid()
    out: dict[str, str | None] = {}
    for ref, oid in theirs.refs.items():
        move = by_oid.get(oid) if ref.startswith("refs/aliases/") else None
        if move is not None:
            _, _, name, alias = ref.split("/", 3)
            out[f"{name}@{alias}"] = theirs.refs.get(f"refs/models/{name}/{move.data['move']['to_version']}")
    return out


def _aliases(vault: Vault, rs, theirs, remote: str, result: FetchResult, left_out: set[str]) -> None:
    """Create here the aliases only the remote has; name those that point elsewhere here. An alias
    whose version was left out (it clashes with one here, or needs what does) is not created:
    here it would point at this vault's own version of that name."""
    from lensvault.remotes.fetch import _adopt_alias
    from lensvault.remotes.results import PullResult

    by_oid = theirs.by_oid()
    for ref, oid in sorted(theirs.refs.items()):
        if not ref.startswith("refs/aliases/"):
            continue
        _, _, name, alias = ref.split("/", 3)
        move = by_oid.get(oid)
        if move is None:
            continue
        there = move.data["move"]["to_version"]
        try:
            here = vault.model(f"{name}@{alias}").version
        except NotFound:
            here = None
        if theirs.refs.get(f"refs/models/{name}/{there}") in left_out:
            continue
        if here is None:
            adopted = PullResult(remote, rs.url, [f"{name}@{alias}"])
            _adopt_alias(vault, rs, theirs, f"{name}@{alias}", remote, adopted)
            result.aliases_created += adopted.aliases_moved
        elif here != there:
            result.aliases_differ.append({"alias": f"{name}@{alias}", "here": here, "remote": there})
