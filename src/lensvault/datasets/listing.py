"""Fast reads of a version's file list, without the catalog or pyarrow when possible.

``status`` and ``checkout`` are the commands people run most, on the biggest
folders. Their cost used to be dominated by imports (SQLAlchemy for the catalog,
pyarrow for the files table), not by work. Two facts make both optional:

- the manifest file in ``data/manifests/`` names the snapshot; it is trusted only
  if its sha256 names a manifest object in the store (a tampered file does not);
- the stat-cache database keeps each snapshot's files-table rows, a
  cache of the Parquet files table (rebuilt from it on a miss).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lensvault.datasets.manifest import Manifest, manifest_path
from lensvault.hashing import hash_bytes
from lensvault.refs import Ref

if TYPE_CHECKING:
    from lensvault.state import FileRow
    from lensvault.vault import Vault

__all__ = ["manifest_for", "repo_manifest", "rows_for"]


def repo_manifest(vault: Vault, ref: str) -> tuple[str, Manifest] | None:
    """(manifest oid, manifest) from data/manifests/ for an exact ``name@X.Y.Z``, if trustworthy."""
    from lensvault.unfinished import writes_in_flight

    r = Ref.parse(ref)
    if r.version is None or writes_in_flight(vault):
        return None  # (a write killed before its COMMIT may have left the file: the catalog decides)
    path = manifest_path(vault.manifests_dir, r.name, str(r.version))
    try:
        data = path.read_bytes()
    except OSError:
        return None
    oid = hash_bytes(data)
    if not vault.store.has(oid):
        return None  # edited, or not written by a vault using this store: the catalog decides
    try:
        m = Manifest.from_bytes(data)
    except Exception:  # noqa: BLE001 - an unreadable file is not trusted: the catalog decides
        return None
    if m.name != r.name or m.version != str(r.version):
        return None
    return oid, m


def manifest_for(vault: Vault, ref: str) -> tuple[str, Manifest]:
    """(``name@version``, manifest) from the repository's manifest file, else from the catalog."""
    ds = vault.dataset(ref)
    return ds.ref, ds.manifest()


def rows_for(vault: Vault, manifest: Manifest) -> list[FileRow]:
    """(path, sha256, size, media_type, width, height) sorted by path, from the stat cache or the Parquet table."""
    rows = vault.state.listing(manifest.snapshot_id)
    if rows is not None:
        return rows
    from lensvault.datasets import files_table

    t = files_table.read_object(vault.store, manifest.tables["files"]["oid"])
    rows = list(zip(*(t[c].to_pylist() for c in ("path", "sha256", "size", "media_type", "width", "height"))))
    vault.state.save_listing(manifest.snapshot_id, rows)
    return rows
