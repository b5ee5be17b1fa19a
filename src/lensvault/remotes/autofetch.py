"""Transparent fetching: the objects a command is about to read, brought from the default remote.

``dataset checkout``, ``model pull``, ``reproduce`` and ``VisionDataset`` call
:func:`ensure_local` with the objects they need before they read any. What is here costs
nothing (one look at the local store, no request); what is not is fetched from the default
remote with ``fetch.download`` — every byte hashed before it enters the store, a corrupt
remote object named and not stored, staged files removed on a failure or Ctrl-C — one GET
per object and nothing else (no listing, no ref read): a checkout of one image of a version
that only ``lensvault fetch`` brought is one request.

With ``fetch=False`` (``--no-fetch``), or without a default remote, nothing is requested:
objects that ``fetch`` left on a remote are an error that says so (and how to bring them);
objects that were here and are lost are left to the caller's own error, which names
``verify`` and ``verify --repair`` (a remote that is configured is asked for those too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lensvault.errors import IntegrityError, NotFound, ObjectMissing
from lensvault.progress import NO_PROGRESS

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from lensvault.vault import Vault

__all__ = ["ensure_local", "ensure_local_batches"]


def _first(missing: list[str]) -> str:
    return f"{len(missing)} object(s) of {{what}} are not in this vault's store (first {missing[0][:12]}…)"


def _refuse_remote_only(vault: Vault, missing: list[str], what: str, ref: str, fetch: bool) -> None:
    """Without fetching (``--no-fetch``, or no default remote): objects ``fetch`` left on a remote
    are an error saying so; objects lost here are left to the caller's error (verify, repair)."""
    from lensvault.remotes.promised import marked, remote_only

    there = remote_only(vault)
    on_remote = [o for o in missing if o in there]
    if not on_remote:
        return
    name = there[on_remote[0]]
    url = next((m["url"] for m in marked(vault).values() if m["remote"] == name), "URL")
    head = f"{len(on_remote)} object(s) of {what} are only on remote {name} (first {on_remote[0][:12]}…)"
    if not fetch:
        raise ObjectMissing(f"{head}, and fetching is off (--no-fetch)", where=vault.store.url,
                            fix=f"run it again without --no-fetch, or bring them first with `lensvault pull {ref}`",
                            missing=on_remote[:100])
    raise ObjectMissing(f"{head}, and this vault has no default remote to fetch them from", where=vault.store.url,
                        fix=f"add it back (`lensvault remote add {name} {url} --default`) and run this again",
                        missing=on_remote[:100])


def ensure_local_batches(vault: Vault, batches: Iterable[Sequence[str]], *, what: str, pull_ref: str | None = None,
                         fetch: bool = True, progress=NO_PROGRESS) -> int:
    """:func:`ensure_local` for objects given a batch at a time (a version's files table, a row
    group at a time): only the oids the store lacks are held, not every oid of the version."""
    missing: list[str] = []
    for batch in batches:
        missing += vault.store.missing(sorted(set(batch)))
    return ensure_local(vault, missing, what=what, pull_ref=pull_ref, fetch=fetch, progress=progress)


def ensure_local(vault: Vault, oids, *, what: str, pull_ref: str | None = None, fetch: bool = True,
                 progress=NO_PROGRESS, jobs: int = 32) -> int:
    """Fetch the objects of ``oids`` this vault's store lacks from the default remote; how many
    came. ``what`` names their owner in messages (``bccd@1.0.0``); ``pull_ref`` is the ref the
    fix suggests pulling (default ``what``)."""
    from lensvault.remotes.config import resolve_remote
    from lensvault.remotes.fetch import download

    store = vault.store
    missing = store.missing(sorted(set(oids)))
    if not missing:
        return 0
    ref = pull_ref or what
    head = _first(missing).format(what=what)
    spec = None
    if fetch:
        try:
            spec = resolve_remote(vault, None)
        except NotFound:
            pass
    if spec is None:
        _refuse_remote_only(vault, missing, what, ref, fetch)
        return 0  # lost here, not fetched without data: the caller's own error names the repair
    rs = spec.store(jobs=jobs)
    label = f"Fetching {len(missing)} object(s) of {what} from {spec.name}"
    try:
        download(store, rs, missing, progress, label)
    except ObjectMissing as e:
        oid = str(e.details.get("oid") or missing[0])
        if not rs.exists():
            raise NotFound(f"{head}, and the default remote {spec.name} is not a LensVault remote (nothing was pushed "
                           "there, or the bucket is another)", where=rs.url,
                           fix="point the default remote at the place the version was pushed to (remove it and add it "
                               "again with the right URL), then run this again",
                           missing=missing[:100]) from None
        raise ObjectMissing(f"object {oid[:12]}… of {what} is neither in this vault's store nor on remote {spec.name}",
                            where=rs.location(oid),
                            fix="in a vault that has it, run `lensvault push --all --check-remote` (it sends what the "
                                "remote lacks), or restore it here with `lensvault verify --repair --from DIR`; "
                                "then run this again", oid=oid, missing=[oid]) from None
    except IntegrityError as e:
        bad = list(e.details.get("corrupt") or [])
        if not bad:
            raise
        raise IntegrityError(f"object {bad[0][:12]}… of {what} on remote {spec.name} is corrupt: its bytes do not "
                             "hash to its name; it was not stored", where=e.where, fix=e.fix, oid=bad[0],
                             corrupt=bad) from None
    finally:
        store.release_pins()
    return len(missing)
