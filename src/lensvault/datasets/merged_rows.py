"""A big folder's new files table when a few files changed: the last version's table, changes merged in.

A re-snapshot whose stat-cache record is the latest version's files table (what a snapshot
leaves behind) knows the new table is that table with the changed, added and removed rows
merged in. Built from the record, a row at a time in Python, it cost ~1.3 s at a million
files for one changed file. Here the old table is read a row group at a time as Arrow, a group
that no change falls in is taken as it is, and the few that one does are cut and joined with
the new rows: no Python object per unchanged row. The digest is hashed from Arrow's joined
bytes (``files_table.update_digest``) in this process while a forked child writes the Parquet
file (``FileRows.store_in_background``), so the two halves of the work run side by side.

The rows are those ``SpooledRows`` would get from the record merged with the changes: the same
digest, and the same Parquet bytes (the same writer, the same row groups).
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from lensvault.datasets import files_table

if TYPE_CHECKING:
    import pyarrow as pa

    from lensvault.store.base import ObjectStore

__all__ = ["MergedRows", "Row"]

# A changed file's row: (size, sha256, media type, width, height); None: the file is gone.
Row = tuple[int, str, str, int | None, int | None]


class MergedRows(files_table.FileRows):
    """The files table stored as ``base`` (an oid) with ``changes`` ([(path, Row | None)], sorted by
    path) merged in. Its digest and counts are made on first use, by reading ``base`` once."""

    __slots__ = ("_base", "_changes", "_facts", "_store")

    def __init__(self, store: ObjectStore, base: str, changes: Sequence[tuple[str, Row | None]]) -> None:
        super().__init__([], [], [], [], [], [])
        self._store, self._base = store, base
        if any(changes[i][0] >= changes[i + 1][0] for i in range(len(changes) - 1)):
            raise ValueError("changes must be sorted by path, each path once")
        self._changes = list(changes)
        self._facts: tuple[int, int, dict[str, int]] | None = None  # (rows, bytes, media-type counts)

    def merged(self) -> Iterator[pa.Table]:
        """The new table's rows in path order, a row group of the old one at a time."""
        return merged_tables(self._store, self._base, self._changes)

    def _describe(self) -> tuple[int, int, dict[str, int]]:
        if self._facts is None:
            h = hashlib.sha256()
            n = size = 0
            counts: dict[str, int] = {}
            for t in self.merged():
                n += t.num_rows
                size += files_table.tally(h, counts, t)
            self._digest = h.hexdigest()
            self._facts = (n, size, counts)
        return self._facts

    def digest(self) -> str:
        self._describe()
        assert self._digest is not None  # set by _describe
        return self._digest

    @property
    def num_rows(self) -> int:
        return self._describe()[0]

    def __len__(self) -> int:
        return self.num_rows

    def total_bytes(self) -> int:
        return self._describe()[1]

    def media_type_counts(self) -> dict[str, int]:
        return dict(self._describe()[2])

    def listing(self) -> None:
        return None  # (a big table: no listing is kept, as for SpooledRows past 65,536 rows)

    def fresh_oids(self) -> list[str] | frozenset[str]:
        """The changed rows' oids, unless the ingest said which it stored (``fresh``): the others
        are the base table's, which a committed version references."""
        if self.fresh is not None:
            return self.fresh
        return [row[1] for _, row in self._changes if row is not None]

    def table(self) -> pa.Table:
        if self._table is None:
            import pyarrow as pa

            self._table = pa.concat_tables([files_table.build([], [], [], [], [], []), *self.merged()])
        return self._table

    def _put_parquet(self, store: ObjectStore) -> str:
        """Written a row group at a time into a spooled file (by the background writer, usually)."""
        rows = files_table.SpooledRows(store)
        try:
            for t in self.merged():
                rows.add_table(t, hashed=False)
            rows.finish()
            return rows.stored_oid(store)
        finally:
            rows.abandon_store()  # (the file is in the store by now, or not wanted)


def merged_tables(store: ObjectStore, base: str, changes: Sequence[tuple[str, Row | None]]) -> Iterator[pa.Table]:
    """The rows of the table stored as ``base`` with ``changes`` merged in, in path order: each
    change goes into the first row group whose last path is not before it; what comes after
    every group comes last."""
    import pyarrow as pa

    paths = [c[0] for c in changes]
    i = 0
    for batch in files_table.batches(store, base):
        t = pa.Table.from_batches([batch])
        if i < len(changes) and t.num_rows:
            j = bisect_right(paths, t.column("path")[-1].as_py(), i)
            if j > i:
                t = _apply(t, changes[i:j])
                i = j
        yield t
    rest = [c for c in changes[i:] if c[1] is not None]
    if rest:
        yield _rows(rest)


def _apply(t: pa.Table, changes: Sequence[tuple[str, Row | None]]) -> pa.Table:
    """``t`` (sorted by path) with ``changes`` (sorted; none after its last path) merged in."""
    import pyarrow as pa

    paths = t.column("path").to_pylist()
    pieces, at = [], 0
    for path, row in changes:
        k = bisect_left(paths, path, at)
        pieces.append(t.slice(at, k - at))
        if row is not None:
            pieces.append(_rows([(path, row)]))
        at = k + 1 if k < len(paths) and paths[k] == path else k  # (a path there is replaced or removed)
    pieces.append(t.slice(at))
    return pa.concat_tables(pieces)


def _rows(rows: Sequence[tuple[str, Row | None]]) -> pa.Table:
    cols: list[list[Any]] = [[], [], [], [], [], []]
    for path, row in rows:
        assert row is not None  # (callers pass only rows that stay)
        cols[0].append(path)
        for k in range(5):
            cols[k + 1].append(row[k])
    return files_table.build(cols[0], cols[1], cols[2], cols[3], cols[4], cols[5])
