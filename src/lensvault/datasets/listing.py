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
from itertools import chain
from typing import TYPE_CHECKING, Any

from lensvault.datasets.manifest import Manifest, manifest_path
from lensvault.hashing import hash_bytes
from lensvault.refs import Ref

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

    from lensvault.state import FileRow
    from lensvault.vault import Vault

__all__ = ["BATCH_ROWS", "batches_matching", "manifest_for", "repo_manifest", "row_batches", "rows_for",
           "rows_matching"]

# Rows a batch-wise reader holds at once: a quarter of a files table's row group
# (files_table.ROW_GROUP_ROWS), read page by page. A checkout holds ~1 KB of Python objects a
# file in flight (paths, keys, entries): a whole row group's batch peaked ~80 MB higher at
# 200,000 files, and the cost of a batch (a worker pool for the links) is small next to it.
BATCH_ROWS = 16_384
_COLUMNS = ("path", "sha256", "size", "media_type", "width", "height")


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
    return list(chain.from_iterable(batches_matching([rows], patterns, ref)))


def batches_matching(batches: Iterable[Sequence[FileRow]], patterns: Sequence[str], ref: str
                     ) -> Iterator[list[FileRow]]:
    """``rows_matching`` a batch at a time: each batch's rows that ``patterns`` select (an empty
    batch when none does). NotFound once the last batch is read if a pattern selected nothing."""
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
    for rows in batches:
        out = []
        for r in rows:
            found = [p for p, ok in rules if ok(r[0])]
            if found:
                hit.update(dict.fromkeys(found, True))
                out.append(r)
        yield out
    unmatched = [p for p, h in hit.items() if not h]
    if unmatched:
        raise NotFound(f"no file of {ref} matches {', '.join(repr(p) for p in unmatched[:10])}", where=ref,
                       fix=f"list its files with `lensvault dataset show {ref} --files`; a folder ends in '/', "
                           "a glob uses * (within a folder) or ** (across folders)")


def row_batches(vault: Vault, manifest: Manifest, *, rows: int | None = None, columns: Sequence[str] = _COLUMNS
                ) -> Iterator[list[tuple[Any, ...]]]:
    """The version's files-table rows sorted by path, at most ``rows`` at a time (``BATCH_ROWS`` if
    None, read when called). ``columns``: of (path, sha256, size, media_type, width, height), in
    that order (a row is a ``FileRow`` with all six).

    From the stat cache's listing, in slices, when it is there (no pyarrow import; a listing is
    kept for versions of up to ``state.LISTING_MAX_ROWS`` files only), else from the Parquet
    files table a row group at a time, never whole. A version of one batch read from Parquet
    gets its listing kept, as ``rows_for`` does.
    """
    rows = rows or BATCH_ROWS
    columns = list(columns)
    cached = vault.state.listing(manifest.snapshot_id)
    if cached is not None:
        pick = [_COLUMNS.index(c) for c in columns]
        for i in range(0, len(cached), rows):
            part = cached[i : i + rows]
            yield part if columns == list(_COLUMNS) else [tuple(r[k] for k in pick) for r in part]
        return
    from lensvault.datasets import files_table

    oid = manifest.tables["files"]["oid"]
    if int(manifest.tables["files"]["rows"]) <= rows and columns == list(_COLUMNS):
        got = list(chain.from_iterable(_as_rows(b) for b in files_table.batches(vault.store, oid, columns)))
        vault.state.save_listing(manifest.snapshot_id, got)
        yield got
        return
    buf: list[tuple[Any, ...]] = []  # (pyarrow may cut a row group into smaller record batches: joined up to ``rows``)
    for b in files_table.batches(vault.store, oid, columns, rows=rows):
        buf.extend(_as_rows(b))
        if len(buf) >= rows:
            yield buf[:rows]
            buf = buf[rows:]
    if buf:
        yield buf


def _as_rows(batch: Any) -> list[tuple[Any, ...]]:  # (a pyarrow RecordBatch)
    return list(zip(*(batch.column(i).to_pylist() for i in range(batch.num_columns))))


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

