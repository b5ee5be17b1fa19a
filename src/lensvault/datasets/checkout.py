"""Materialize a dataset version into a folder, all or nothing, a batch of files at a time.

Files are written into a hidden sibling folder which is renamed to DEST at the
end, so an interrupted or failed checkout never leaves a half-filled DEST.

The version's files are read, linked or copied, stat'ed, checked and fed to DEST's
stat-cache record a batch at a time (``listing.BATCH_ROWS`` files: one row group of
the files table), so what a checkout holds does not grow with the version; no
structure has an entry per file of the whole version. Every path of a batch is
checked before a byte of that batch is written: a path that would escape DEST
(absolute, ``..``) means a tampered manifest and stops the checkout. The batches
written before it are in the staging folder, which is removed: nothing reaches DEST.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lensvault.errors import InputError, IntegrityError, LensVaultError, ObjectMissing
from lensvault.progress import NO_PROGRESS
from lensvault.state import stat_key
from lensvault.store import local_links
from lensvault.store.base import LinkMode
from lensvault.store.linking import storage_error

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

    from lensvault.datasets.handle import Dataset
    from lensvault.datasets.manifest import Manifest
    from lensvault.progress import Progress
    from lensvault.state import FileRow, StatKey
    from lensvault.store.base import ObjectKey
    from lensvault.store.verified import KnownKeys
    from lensvault.vault import Vault

__all__ = ["MARKER", "CheckoutResult", "check_destination", "checkout", "checkout_version", "safe_relpath"]

MARKER = ".lensvault-checkout.json"


@dataclass(frozen=True)
class CheckoutResult:
    ref: str
    dest: str
    files: int
    bytes: int
    link: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def safe_relpath(rel: str, where: str) -> str:
    # Plain string checks: this runs once per file, and PurePosixPath costs ~100 µs each.
    if (not rel or rel[0] == "/" or "\x00" in rel or rel.startswith("./") or rel.endswith("/")
            or "//" in rel or any(part in ("..", ".") for part in rel.split("/"))):
        raise IntegrityError(
            f"manifest path {rel!r} would escape the destination folder",
            where=where,
            fix="the manifest was tampered with; run `lensvault verify` and restore it from the store",
        )
    return rel


def checkout(dataset: Dataset, dest: Path, *, link: LinkMode = LinkMode.AUTO, progress: Progress = NO_PROGRESS
             ) -> CheckoutResult:
    return checkout_version(dataset.vault, dataset.ref, dataset.manifest(), dest, link=link, progress=progress)


def check_destination(dest: str | Path, verb: str) -> Path:
    """DEST as an absolute path, if a checkout or export may create it: not a symbolic link
    (a link, a dangling one or a loop, would send the files elsewhere), not a file, and
    new or empty. Raises a located error otherwise."""
    dest = Path(dest).absolute()
    if dest.is_symlink():
        raise InputError(
            "the destination is a symbolic link",
            where=str(dest),
            fix=f"{verb} into the folder it points to ({os.path.realpath(dest)}), or into a new folder",
        )
    try:
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise InputError(
                "the destination folder is not empty" if dest.is_dir() else "the destination is a file",
                where=str(dest),
                fix=f"choose a new or empty folder ({verb} never overwrites files)",
            )
    except OSError as e:
        raise storage_error(e, str(dest)) from e
    return dest


def checkout_version(vault: Vault, ref: str, manifest: Manifest, dest: Path, *, link: LinkMode = LinkMode.AUTO,
                     progress: Progress = NO_PROGRESS, patterns: Sequence[str] = (),
                     fetch: Callable[[list[str]], int] | None = None, rows: int | None = None) -> CheckoutResult:
    """Materialize the files of version ``ref`` (its ``manifest``) into DEST, all or nothing, a batch
    of ``rows`` files at a time (default ``listing.BATCH_ROWS``).

    No corrupt byte is checked out: a copy is hashed as it is made; a linked object is
    trusted only if verified since it last changed (store/verified.py), else hashed
    first. ``patterns``: only the files they select (a file, a folder ``DIR/``, a glob:
    ``listing.rows_matching``); each must select one, which is checked before anything
    is written. They are kept in the marker, so that ``status`` compares the folder
    with those files only. ``fetch``: called with the objects the store lacks (all of
    them, sorted) when the checkout finds one missing; if it brings any, the checkout
    starts over once (``remotes.autofetch.ensure_local``: nothing is looked up in
    advance, so a complete store costs no stat per file).
    """
    link = LinkMode(link)
    dest = check_destination(dest, "check out")
    files = _Selection(vault, ref, manifest, tuple(patterns), rows)
    count = files.count()
    # The files-table digest describes the whole version: kept with DEST's stat-cache record
    # only when every file is there (a partial checkout is not the table).
    digest = None if patterns else manifest.tables["files"].get("digest")
    try:
        return _checkout(vault, files, dest, count, link, progress, digest)
    except ObjectMissing:
        missing = files.missing()
        if not missing or fetch is None or not fetch(missing):
            raise _missing_error(vault, ref, missing) from None
    try:
        return _checkout(vault, files, dest, count, link, progress, digest)
    except ObjectMissing:
        raise _missing_error(vault, ref, files.missing()) from None


@dataclass(frozen=True)
class _Selection:
    """The files a checkout writes (a version's, or those ``patterns`` select), read from the
    files table a batch at a time, as often as needed (a pass for an error is one more read)."""

    vault: Vault
    ref: str
    manifest: Manifest
    patterns: tuple[str, ...]
    rows: int | None

    def batches(self, columns: Sequence[str] | None = None) -> Iterator[list[Any]]:
        """Batches of rows sorted by path: ``FileRow``s, or just ``columns`` (path first)."""
        from lensvault.datasets.listing import batches_matching, row_batches

        picked = row_batches(self.vault, self.manifest, rows=self.rows,
                             **({"columns": columns} if columns is not None else {}))
        return batches_matching(picked, self.patterns, self.ref) if self.patterns else picked

    def count(self) -> int:
        """How many files; with patterns, a pass over the paths that also checks that each
        pattern selects a file (NotFound otherwise), before anything is written."""
        if not self.patterns:
            return int(self.manifest.tables["files"]["rows"])
        return sum(map(len, self.batches(("path",))))

    def missing(self) -> list[str]:
        """The objects of these files the store lacks, sorted, each once."""
        out: set[str] = set()
        for batch in self.batches(("path", "sha256")):
            out.update(self.vault.store.missing(sorted({r[1] for r in batch})))
        return sorted(out)


def _checkout(vault: Vault, files: _Selection, dest: Path, count: int, link: LinkMode, progress: Progress,
              files_digest: str | None) -> CheckoutResult:
    """One attempt; ObjectMissing as it is (the caller lists what is missing, or fetches it)."""
    from lensvault.store.leftovers import staging_folder

    ref = files.ref
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise storage_error(e, str(dest.parent)) from e
    # The first batch before anything is made: reading the files table checks its hash, so a
    # damaged or missing table is its own error (it names the table and its repair).
    batches = files.batches()
    first = next(batches, None)
    stream = chain([first] if first is not None else [], batches)
    n = size = 0
    complete = True  # every file got a stat-cache entry
    # Fed in path order as the batches go; made DEST's record only once DEST has its name.
    with vault.state.index_writer(os.path.realpath(dest)) as record:
        with staging_folder(vault.dir / "staging", dest.parent) as tmp:
            stmp = str(tmp)
            try:
                tmp.mkdir()
                verified: KnownKeys | None = None
                with progress.task("Checking out", count) as advance, \
                        local_links.materializing(vault.store, link) as materialize:
                    for batch in stream:
                        if not batch:
                            continue  # (no file of it matches the patterns)
                        paths = [safe_relpath(r[0], ref) for r in batch]
                        # (the batch's folders: sorted by path, a folder's files are in one or two
                        # neighbouring batches, and makedirs finds one made before)
                        for d in sorted({p.rpartition("/")[0] for p in paths} - {""}):
                            os.makedirs(f"{stmp}/{d}", exist_ok=True)
                        items = [(r[1], f"{stmp}/{p}") for r, p in zip(batch, paths)]
                        del paths
                        used = materialize(items, on_done=advance)
                        # Stat'ed here, before DEST exists under its name: nobody else writes into the
                        # staging folder, so every key is of a file exactly as we wrote it.
                        keys = _settled_keys([p for _, p in items], own_ctime=LinkMode.HARDLINK in used)
                        del items
                        if used - {LinkMode.COPY}:
                            if verified is None:  # (read once: the store's record, not the version's)
                                verified = vault.verified.load()
                            _check_linked(vault, batch, keys, used, verified, stream)
                        # We know every file's hash and media already: caching them makes the first
                        # `status` or snapshot of a fresh checkout a stat walk instead of a re-hash.
                        for (path, oid, _, mt, w, h), key in zip(batch, keys):
                            if key is None:
                                complete = False
                            else:
                                record.add(path, (*key, oid, mt, w, h))
                        n += len(batch)
                        size += sum(r[2] for r in batch)
                marker: dict[str, Any] = {"ref": ref, "snapshot_id": files.manifest.snapshot_id, "link": link.value}
                if files.patterns:  # (the patterns, not every path: status matches each row against each)
                    marker["paths"] = list(files.patterns)
                (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
                if dest.exists():
                    dest.rmdir()
                os.rename(tmp, dest)
            except ObjectMissing:
                # Materializing fails on the first missing object; no object is checked in advance
                # (a stat per file, ~0.15 s for 50,000). The caller lists every missing one.
                _remove_tree(tmp)
                raise
            except IntegrityError as e:
                _remove_tree(tmp)
                if "corrupt" in e.details:
                    raise _corrupt_error(vault, ref, e.details["corrupt"]) from None
                raise
            except OSError as e:
                _remove_tree(tmp)
                if isinstance(e, LensVaultError):
                    raise
                raise storage_error(e, str(dest)) from e
            except BaseException:
                _remove_tree(tmp)
                raise
        record.commit(files_digest if complete else None)
    return CheckoutResult(ref, str(dest), n, size, link.value)


def _check_linked(vault: Vault, batch: list[FileRow], keys: list[StatKey | None], used: set[LinkMode],
                  verified: KnownKeys, rest: Iterator[list[FileRow]]) -> None:
    """Objects shared by link (hardlink, symlink, reflink) must be verified since they last changed.

    A corrupt one stops the checkout once the objects of the batches not written yet (``rest``)
    are checked too, so that the error lists every corrupt object of the version (they are
    not linked yet: their own keys, which are what a hardlink or symlink would show)."""
    from lensvault.store.verified import untrusted

    oids = [r[1] for r in batch]
    obj_keys: Iterable[ObjectKey | None]
    if LinkMode.REFLINK in used:
        # A reflink is a new inode: the object's own key is needed.
        obj_keys = local_links.object_keys(vault.store, oids)
    else:
        # A hardlink is the object; a symlink's stat is the object's.
        obj_keys = (k[:3] if k is not None else None for k in keys)  # made as ``untrusted`` reads them
    # (No bar of its own: it would sit inside the checkout's. Objects are recorded as verified
    # when they are stored, so this usually hashes nothing.)
    bad = untrusted(vault.store, zip(oids, obj_keys), verified, record=vault.verified)
    if not bad:
        return
    corrupt = {o for o, r in bad.items() if r == "corrupt"}
    if not corrupt:
        raise ObjectMissing("missing", oid=next(iter(bad)))
    for later in rest:
        oids = [r[1] for r in later]
        found = untrusted(vault.store, zip(oids, local_links.object_keys(vault.store, oids)), verified,
                          record=vault.verified)
        corrupt.update(o for o, r in found.items() if r == "corrupt")
    raise IntegrityError("corrupt", corrupt=sorted(corrupt))


def _corrupt_error(vault: Vault, ref: str, corrupt: list[str]) -> IntegrityError:
    from lensvault.datasets.needs import versions_needing

    needed = versions_needing(vault, corrupt)
    first = corrupt[0]
    others = sorted(set().union(*needed.values())) if needed else [ref]
    return IntegrityError(
        f"{len(corrupt)} object(s) of {ref} are corrupt in the store (first: {first[:12]}…); nothing was checked out",
        where=vault.store.location(first),
        fix=f"run `lensvault verify --repair` (add --from DIR for a folder that holds the original files); "
            f"versions that need them: {', '.join(others[:10])}" + (f" … and {len(others) - 10} more" if len(others) > 10 else ""),
        corrupt=corrupt[:100], needed_by={o: sorted(v)[:20] for o, v in needed.items()},
    )


def _missing_error(vault: Vault, ref: str, missing: list[str]) -> ObjectMissing:
    """``missing``: every object of the checkout the store lacks (``_Selection.missing``)."""
    return ObjectMissing(
        f"{len(missing)} object(s) of {ref} are missing from the store"
        + (f" (first: {missing[0][:12]}…)" if missing else " (one vanished during the checkout)"),
        where=vault.store.url,
        fix=f"run `lensvault verify {ref}` for the full list; `lensvault verify --repair --from DIR` "
            "restores them from a folder that holds the files",
        missing=missing[:100],
    )


# A checkout waits this long at most for the files it just wrote to become "settled" (their
# timestamps a tick in the past, see state.racy) rather than cache them as unsure.
_SETTLE_WAIT_NS = 50_000_000


def _settled_keys(paths: list[str], *, own_ctime: bool) -> list[StatKey | None]:
    """Stat keys of files just written, cacheable as sure (state.racy); None for one that cannot
    be read. Files written within the last timestamp tick are stat'ed again once it has passed,
    if that is a short wait (sub-second timestamps); otherwise they are cached as unsure."""
    import time

    from lensvault.state import racy_many, settles_at, unsure

    seen = time.time_ns()
    keys = _stat_keys(paths)
    late = racy_many(keys, seen, ctime=not own_ctime)
    if not late:
        return keys
    wait = max(settles_at(k, ctime=not own_ctime) for i in late if (k := keys[i]) is not None) - seen + 1_000_000
    if wait <= _SETTLE_WAIT_NS:
        time.sleep(wait / 1e9)
        seen = time.time_ns()
        for i, k in zip(late, _stat_keys([paths[i] for i in late])):
            keys[i] = k
        late = [late[j] for j in racy_many([keys[i] for i in late], seen, ctime=not own_ctime)]
    for i in late:
        if (k := keys[i]) is not None:  # (racy_many skips a None)
            keys[i] = unsure(k)
    return keys


def _stat_keys(paths: list[str]) -> list[StatKey | None]:
    """Stat keys of files just written; None for one that cannot be read."""
    out: list[StatKey | None] = []
    for p in paths:
        try:
            out.append(stat_key(os.stat(p)))
        except OSError:
            out.append(None)
    return out


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
