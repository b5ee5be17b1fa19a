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
from pathlib import Path, PurePosixPath

from lensvault.errors import InputError, IntegrityError, LensVaultError, ObjectMissing
from lensvault.progress import NO_PROGRESS
from lensvault.state import StatKey
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
    p = PurePosixPath(rel)
    if not rel or p.is_absolute() or ".." in p.parts or "\x00" in rel or rel != p.as_posix() or rel.startswith("./"):
        raise IntegrityError(
            f"manifest path {rel!r} would escape the destination folder",
            where=where,
            fix="the manifest was tampered with; run `lensvault verify` and restore it from the store",
        )
    return rel


def checkout(dataset, dest: Path, *, link: LinkMode = LinkMode.AUTO, progress=NO_PROGRESS) -> CheckoutResult:
    vault = dataset.vault
    dest = Path(dest).absolute()
    if dest.exists():
        if not dest.is_dir() or any(dest.iterdir()):
            raise InputError(
                "the destination folder is not empty",
                where=str(dest),
                fix="choose a new or empty folder (checkout never overwrites files)",
            )
    table = dataset.files()
    paths = [safe_relpath(p, dataset.ref) for p in table["path"].to_pylist()]
    oids = table["sha256"].to_pylist()
    missing = vault.store.missing(sorted(set(oids)))
    if missing:
        raise ObjectMissing(
            f"{len(missing)} object(s) of {dataset.ref} are missing from the store (first: {missing[0][:12]}…)",
            where=vault.store.url,
            fix="run `lensvault verify " + dataset.ref + "` for the full list; restore the store or re-snapshot the source",
            missing=missing[:100],
        )
    # Short and fixed-length: DEST's own name may already be near NAME_MAX.
    tmp = dest.parent / f".lensvault-checkout-{os.getpid()}-{os.urandom(4).hex()}"
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
        for d in sorted({str(PurePosixPath(p).parent) for p in paths} - {"."}):
            (tmp / d).mkdir(parents=True, exist_ok=True)
        items = [(oid, tmp / p) for oid, p in zip(oids, paths)]
        with progress.task("Checking out", len(items)) as advance:
            vault.store.materialize(items, link, on_done=advance)
        marker = {"ref": dataset.ref, "snapshot_id": dataset.snapshot_id, "link": link.value}
        (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        if dest.exists():
            dest.rmdir()
        os.rename(tmp, dest)
    except OSError as e:
        _remove_tree(tmp)
        if isinstance(e, LensVaultError):
            raise
        raise storage_error(e, str(dest)) from e
    except BaseException:
        _remove_tree(tmp)
        raise
    _remember_stats(vault, [(dest / p, oid) for p, oid in zip(paths, oids)])
    total = int(sum(table["size"].to_pylist()))
    return CheckoutResult(dataset.ref, str(dest), len(paths), total, link.value)


def _remember_stats(vault, items) -> None:
    # We know every file's hash already; caching it makes the first `status`
    # of a fresh checkout a stat walk instead of a full re-hash.
    entries = []
    for path, oid in items:
        try:
            entries.append((StatKey.of(os.stat(path)), oid))
        except OSError:
            continue
    vault.state.save(entries)


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
