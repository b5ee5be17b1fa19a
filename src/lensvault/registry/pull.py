"""A model bundle back into a folder, all or nothing, every byte verified.

Files are written into a hidden sibling folder, re-hashed there, and the folder is
renamed to DEST only when every file matches its sha256 — the same all-or-nothing
rule as a dataset checkout. ``bundle.json`` is the manifest object itself, so its
own sha256 is the bundle id shown by ``model show``.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lensvault.errors import IntegrityError, LensVaultError, ObjectMissing
from lensvault.store.base import LinkMode
from lensvault.store.linking import storage_error
from lensvault.store.local_links import materialize

if TYPE_CHECKING:
    from lensvault.vault import Vault

__all__ = ["PullResult", "pull_model"]


@dataclass(frozen=True)
class PullResult:
    ref: str
    dest: str
    files: list[dict]
    bundle_oid: str

    def to_dict(self) -> dict:
        return asdict(self)


def pull_model(vault: Vault, model, dest: Path, *, link: LinkMode = LinkMode.COPY) -> PullResult:
    from lensvault.datasets.checkout import check_destination

    dest = check_destination(dest, "pull")
    files = model.files
    missing = vault.store.missing(sorted({f["sha256"] for f in files}))
    if missing:
        raise ObjectMissing(f"{len(missing)} file(s) of {model.ref} are missing from the store", where=vault.store.url,
                            fix="run `lensvault verify` for the list; restore the store from a backup", missing=missing)
    from lensvault.store.leftovers import staging_folder

    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise storage_error(e, str(dest.parent)) from e
    # Recorded under .lensvault/staging/ while it exists: gc removes it if this process is killed.
    with staging_folder(vault.dir / "staging", dest.parent) as tmp:
        _fill(vault, model, files, dest, tmp, link)
    return PullResult(model.ref, str(dest), [dict(f) for f in files], model.bundle_oid)


def _fill(vault: Vault, model, files, dest: Path, tmp: Path, link) -> None:
    from lensvault.datasets.checkout import safe_relpath
    from lensvault.hashing import hash_file

    try:
        tmp.mkdir()
        items = [(f["sha256"], tmp / safe_relpath(f["name"], model.ref)) for f in files]
        for _, p in items:
            p.parent.mkdir(parents=True, exist_ok=True)
        try:
            materialize(vault.store, items, LinkMode(link))
        except IntegrityError as e:  # a copy hashes what it copies: name the bundle file
            bad = (e.details.get("corrupt") or [None])[0]
            name = next((f["name"] for f in files if f["sha256"] == bad), bad)
            raise IntegrityError(f"{name} of {model.ref} is corrupt in the store", where=e.where,
                                 fix=e.fix, corrupt=e.details.get("corrupt")) from None
        (tmp / "bundle.json").write_bytes(vault.store.read_bytes(model.bundle_oid))
        for f in [*files, {"name": "bundle.json", "sha256": model.bundle_oid}]:
            got = hash_file(tmp / f["name"]).oid
            if got != f["sha256"]:
                raise IntegrityError(f"{f['name']} of {model.ref} does not match its hash after writing",
                                     where=f"{f['name']} (expected {f['sha256'][:12]}…, got {got[:12]}…)",
                                     fix="the stored object is corrupt: run `lensvault verify`")
        if dest.exists():
            dest.rmdir()
        os.rename(tmp, dest)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, LensVaultError):
            raise
        raise storage_error(e, str(dest)) from e
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
