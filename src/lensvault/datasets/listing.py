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

import re
from typing import TYPE_CHECKING

from lensvault.datasets.manifest import Manifest, manifest_path
from lensvault.hashing import hash_bytes
from lensvault.refs import Ref

if TYPE_CHECKING:
    from collections.abc import Callable

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


def rows_matching(rows: list[FileRow], patterns: list[str], ref: str) -> list[FileRow]:
    """The rows whose path is one of ``patterns``, lies under one ending in ``/``, or matches one
    as a glob (``*`` stays within a folder, ``**`` crosses them); a pattern that selects nothing
    is an error (a typo must not make a checkout silently smaller)."""
    from lensvault.errors import NotFound

    def rule(p: str) -> Callable[[str], bool]:
        if p.endswith("/"):
            return lambda path: path.startswith(p)
        if "*" in p or "?" in p:
            rx = _glob(p)
            return lambda path: rx.fullmatch(path) is not None
        return lambda path: path == p

    rules = [(p, rule(p)) for p in patterns]
    hit = dict.fromkeys(patterns, False)
    out = []
    for r in rows:
        found = [p for p, ok in rules if ok(r[0])]
        if found:
            hit.update(dict.fromkeys(found, True))
            out.append(r)
    unmatched = [p for p, h in hit.items() if not h]
    if unmatched:
        raise NotFound(f"no file of {ref} matches {', '.join(repr(p) for p in unmatched[:10])}", where=ref,
                       fix=f"list its files with `lensvault dataset show {ref} --files`; a folder ends in '/', "
                           "a glob uses * (within a folder) or ** (across folders)")
    return out


def _glob(pattern: str) -> re.Pattern[str]:
    """A glob as a regular expression: ``**`` any path, ``*`` and ``?`` within one folder."""

    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out))

