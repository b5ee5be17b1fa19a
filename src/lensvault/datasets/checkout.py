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

from lensvault.errors import InputError, IntegrityError, LensVaultError, ObjectMissing
from lensvault.progress import NO_PROGRESS
from lensvault.state import stat_key
from lensvault.store.base import LinkMode
from lensvault.store.linking import storage_error

__all__ = ["CheckoutResult", "checkout", "MARKER", "safe_relpath"]

MARKER = ".lensvault-checkout.json"


@dataclass(frozen=True)
class CheckoutResult:
    ref: str
    dest: str
    files: int
    bytes: int
    link: str

    def to_dict(self) -> dict:
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


def checkout(dataset, dest: Path, *, link: LinkMode = LinkMode.AUTO, progress=NO_PROGRESS) -> CheckoutResult:
    from lensvault.datasets.listing import rows_for

    m = dataset.manifest()
    return checkout_rows(dataset.vault, dataset.ref, m.snapshot_id, rows_for(dataset.vault, m), dest,
                         link=link, progress=progress, files_digest=m.tables.get("files", {}).get("digest"))


def checkout_rows(vault, ref: str, snapshot_id: str, rows: list[tuple], dest: Path, *,
                  link: LinkMode = LinkMode.AUTO, progress=NO_PROGRESS, files_digest: str | None = None) -> CheckoutResult:
    """Materialize files-table rows (path, sha256, size, media_type, width, height) into DEST, all or nothing.

    ``files_digest``: the rows' digest (from the manifest), kept with DEST's stat-cache record.
    """
    link = LinkMode(link)
    dest = Path(dest).absolute()
    if dest.exists():
        if not dest.is_dir() or any(dest.iterdir()):
            raise InputError(
                "the destination folder is not empty",
                where=str(dest),
                fix="choose a new or empty folder (checkout never overwrites files)",
            )
    paths = [safe_relpath(r[0], ref) for r in rows]
    oids = [r[1] for r in rows]
    # Short and fixed-length: DEST's own name may already be near NAME_MAX.
    tmp = dest.parent / f".lensvault-checkout-{os.getpid()}-{os.urandom(4).hex()}"
    stmp = str(tmp)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
        for d in sorted({p.rpartition("/")[0] for p in paths} - {""}):
            os.makedirs(f"{stmp}/{d}", exist_ok=True)
        items = [(oid, f"{stmp}/{p}") for oid, p in zip(oids, paths)]
        with progress.task("Checking out", len(items)) as advance:
            vault.store.materialize(items, link, on_done=advance)
        marker = {"ref": ref, "snapshot_id": snapshot_id, "link": link.value}
        (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        if dest.exists():
            dest.rmdir()
        os.rename(tmp, dest)
    except ObjectMissing:
        # Materializing fails on the first missing object; no object is checked in advance
        # (a stat per file, ~0.15 s for 50,000). The error lists every missing one.
        _remove_tree(tmp)
        raise _missing_error(vault, ref, oids) from None
    except OSError as e:
        _remove_tree(tmp)
        if isinstance(e, LensVaultError):
            raise
        raise storage_error(e, str(dest)) from e
    except BaseException:
        _remove_tree(tmp)
        raise
    sdest = str(dest)
    _remember_stats(vault, sdest, rows, files_digest)
    return CheckoutResult(ref, sdest, len(paths), int(sum(r[2] for r in rows)), link.value)


def _missing_error(vault, ref: str, oids: list[str]) -> ObjectMissing:
    missing = vault.store.missing(sorted(set(oids)))
    return ObjectMissing(
        f"{len(missing)} object(s) of {ref} are missing from the store"
        + (f" (first: {missing[0][:12]}…)" if missing else " (one vanished during the checkout)"),
        where=vault.store.url,
        fix=f"run `lensvault verify {ref}` for the full list; restore the store or re-snapshot the source",
        missing=missing[:100],
    )


def _remember_stats(vault, dest: str, rows, files_digest: str | None) -> None:
    # We know every file's hash and media already; caching them makes the first
    # `status` or snapshot of a fresh checkout a stat walk instead of a full re-hash.
    # (In one process: split over two, the stats were slower, their results pickled back.)
    keys = _stat_keys([f"{dest}/{r[0]}" for r in rows])
    entries = {path: (*key, oid, mt, w, h) for (path, oid, _, mt, w, h), key in zip(rows, keys) if key is not None}
    vault.state.save_index(os.path.realpath(dest), entries,
                           digest=files_digest if len(entries) == len(rows) else None)


def _stat_keys(paths: list[str]) -> list:
    """Stat keys of files just written; None for one that cannot be read."""
    out = []
    for p in paths:
        try:
            out.append(stat_key(os.stat(p)))
        except OSError:
            out.append(None)
    return out


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
