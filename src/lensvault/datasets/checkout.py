"""Materialize a dataset version into a folder, all or nothing.

Files are written into a hidden sibling folder which is renamed to DEST at the
end, so an interrupted or failed checkout never leaves a half-filled DEST. Every
manifest path is checked before a byte is written: a path that would escape
DEST (absolute, ``..``) means a tampered manifest and stops the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lensvault.errors import InputError, IntegrityError, LensVaultError, ObjectMissing
from lensvault.progress import NO_PROGRESS
from lensvault.state import stat_key
from lensvault.store import local_links
from lensvault.store.base import LinkMode
from lensvault.store.linking import storage_error

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from lensvault.datasets.handle import Dataset
    from lensvault.progress import Progress
    from lensvault.state import Entry, FileRow, StatKey
    from lensvault.store.base import ObjectKey
    from lensvault.vault import Vault

__all__ = ["CheckoutResult", "MARKER", "check_destination", "checkout", "safe_relpath"]

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
    from lensvault.datasets.listing import rows_for

    m = dataset.manifest()
    return checkout_rows(dataset.vault, dataset.ref, m.snapshot_id, rows_for(dataset.vault, m), dest,
                         link=link, progress=progress, files_digest=m.tables.get("files", {}).get("digest"))


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


def checkout_rows(vault: Vault, ref: str, snapshot_id: str, rows: Sequence[FileRow], dest: Path, *,
                  link: LinkMode = LinkMode.AUTO, progress: Progress = NO_PROGRESS, files_digest: str | None = None,
                  patterns: Sequence[str] = ()) -> CheckoutResult:
    """Materialize files-table rows (path, sha256, size, media_type, width, height) into DEST, all or nothing.

    No corrupt byte is checked out: a copy is hashed as it is made; a linked object is
    trusted only if verified since it last changed (store/verified.py), else hashed
    first. ``files_digest``: the rows' digest (from the manifest), kept with DEST's
    stat-cache record. ``patterns``: the ``--path`` patterns a partial checkout selected ``rows`` by (kept
    in the marker, so that ``status`` compares the folder with those files only).
    """
    from lensvault.store.leftovers import staging_folder

    link = LinkMode(link)
    dest = check_destination(dest, "check out")
    paths = [safe_relpath(r[0], ref) for r in rows]
    oids = [r[1] for r in rows]
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise storage_error(e, str(dest.parent)) from e
    with staging_folder(vault.dir / "staging", dest.parent) as tmp:
        stmp = str(tmp)
        try:
            tmp.mkdir()
            for d in sorted({p.rpartition("/")[0] for p in paths} - {""}):
                os.makedirs(f"{stmp}/{d}", exist_ok=True)
            items = [(oid, f"{stmp}/{p}") for oid, p in zip(oids, paths)]
            with progress.task("Checking out", len(items)) as advance:
                used = local_links.materialize(vault.store, items, link, on_done=advance)
            # Stat'ed here, before DEST exists under its name: nobody else writes into the
            # staging folder, so every key is of a file exactly as we wrote it.
            keys = _settled_keys([p for _, p in items], own_ctime=LinkMode.HARDLINK in used)
            del items  # (a full path per file: gone before the checks and the cache record)
            if used - {LinkMode.COPY}:
                _check_linked(vault, ref, oids, paths, keys, used, progress)
            marker: dict[str, Any] = {"ref": ref, "snapshot_id": snapshot_id, "link": link.value}
            if patterns:  # (the patterns, not every path: status matches each row against each)
                marker["paths"] = list(patterns)
            (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
            if dest.exists():
                dest.rmdir()
            os.rename(tmp, dest)
        except ObjectMissing:
            # Materializing fails on the first missing object; no object is checked in advance
            # (a stat per file, ~0.15 s for 50,000). The error lists every missing one.
            _remove_tree(tmp)
            raise _missing_error(vault, ref, oids) from None
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
    sdest = str(dest)
    _remember_stats(vault, sdest, rows, keys, files_digest)
    return CheckoutResult(ref, sdest, len(paths), int(sum(r[2] for r in rows)), link.value)


def _check_linked(vault: Vault, ref: str, oids: list[str], paths: list[str], keys: list[StatKey | None],
                  used: set[LinkMode], progress: Progress) -> None:
    """Objects shared by link (hardlink, symlink, reflink) must be verified since they last changed."""
    from lensvault.store.verified import untrusted

    obj_keys: Iterable[ObjectKey | None]
    if LinkMode.REFLINK in used:
        # A reflink is a new inode: the object's own key is needed.
        obj_keys = local_links.object_keys(vault.store, oids)
    else:
        # A hardlink is the object; a symlink's stat is the object's.
        obj_keys = (k[:3] if k is not None else None for k in keys)  # made as ``untrusted`` reads them
    bad = untrusted(vault.store, zip(oids, obj_keys), vault.verified.load(), record=vault.verified,
                    progress=progress)
    if bad:
        corrupt = sorted(o for o, r in bad.items() if r == "corrupt")
        if corrupt:
            raise IntegrityError("corrupt", corrupt=corrupt)
        raise ObjectMissing("missing", oid=next(iter(bad)))


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


def _missing_error(vault: Vault, ref: str, oids: list[str]) -> ObjectMissing:
    missing = vault.store.missing(sorted(set(oids)))
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


def _remember_stats(vault: Vault, dest: str, rows: Sequence[FileRow], keys: list[StatKey | None], files_digest: str | None) -> None:
    # We know every file's hash and media already; caching them makes the first
    # `status` or snapshot of a fresh checkout a stat walk instead of a full re-hash.
    # (In one process: split over two, the stats were slower, their results pickled back.)
    entries: dict[str, Entry] = {path: (*key, oid, mt, w, h) for (path, oid, _, mt, w, h), key in zip(rows, keys) if key is not None}
    vault.state.save_index(os.path.realpath(dest), entries,
                           digest=files_digest if len(entries) == len(rows) else None)


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
