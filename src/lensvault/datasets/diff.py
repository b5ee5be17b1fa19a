"""File-level diff of two dataset versions: added, removed, modified, renamed.

Files tables are sorted by path, so the diff is one merge pass over the two
(no hashing of a million paths); a rename is a removed path and an added path
with the same content. The merge walks both tables a batch (a Parquet row group)
at a time: its memory is two batches plus what changed, whatever the file count.
"""

from __future__ import annotations

from array import array
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    import numpy as np
    import numpy.typing as npt
    import pyarrow as pa

    from lensvault.datasets.handle import Dataset

__all__ = ["FileDiff", "diff_batches", "diff_files", "diff_tables"]


@dataclass(frozen=True)
class FileDiff:
    a: str
    b: str
    added: list[str]
    removed: list[str]
    modified: list[str]
    renamed: list[tuple[str, str]]
    unchanged: int
    bytes: dict[str, int] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.modified or self.renamed)

    def summary(self) -> str:
        if not self.changed:
            return f"{self.a} and {self.b} have the same files"
        parts = []
        for label, items in (("added", self.added), ("removed", self.removed), ("modified", self.modified), ("renamed", self.renamed)):
            if items:
                parts.append(f"{len(items)} {label}")
        return f"{self.a} → {self.b}: " + ", ".join(parts) + f"; {self.unchanged} unchanged"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["renamed"] = [{"from": a, "to": b} for a, b in self.renamed]
        d["summary"] = self.summary()
        return d


def _numpy(arr: pa.Array) -> npt.NDArray[np.int64]:
    """An int64 column as numpy, read from the Arrow buffers.

    Not ``to_numpy()``: with pandas installed, pyarrow imports it there (~0.3 s),
    a third of the budget for diffing two million-file versions.
    """
    import numpy as np

    if arr.null_count:
        return np.array([v if v is not None else 0 for v in arr.to_pylist()], dtype=np.int64)
    return np.frombuffer(arr.buffers()[1], dtype=np.int64, count=len(arr), offset=arr.offset * 8)


class _Column:
    """A batch's string column as Arrow's bytes: rows and runs of rows are sliced and compared
    as ``bytes``, so a million-row diff makes Python strings only for the rows that differ
    (``to_pylist`` of the paths and hashes of two million-row tables took ~0.7 s)."""

    def __init__(self, arr: pa.Array) -> None:
        import numpy as np
        import pyarrow as pa

        if pa.types.is_large_string(arr.type):
            arr = arr.cast(pa.string())
        n = len(arr)
        if arr.null_count:
            raise ValueError("a files table has an empty path or hash")
        bufs = arr.buffers()
        off = np.frombuffer(bufs[1], dtype=np.int32, count=n + 1, offset=arr.offset * 4) if n else np.zeros(1, np.int32)
        self.data = bufs[2].to_pybytes() if n and bufs[2] is not None else b""
        lens = np.diff(off)
        # Hashes all have the same width: a row's bytes are found by arithmetic, no offsets.
        self.width = int(lens[0]) if n and bool((lens == lens[0]).all()) else None
        self.base = int(off[0])
        # Offsets and lengths per row only when widths vary (else empty), as C ints: a Python
        # int per row (~36 bytes each, two per row) left the heap bigger after every batch.
        self.off, self.lens = array("i"), array("i")
        if self.width is None:
            self.off.frombytes(off.astype(np.int32).tobytes())
            self.lens.frombytes(lens.astype(np.int32).tobytes())

    def row(self, i: int) -> bytes:
        if self.width is not None:
            start = self.base + i * self.width
            return self.data[start : start + self.width]
        return self.data[self.off[i] : self.off[i + 1]]

    def run(self, i: int, k: int) -> bytes:
        """The bytes of rows i .. i+k-1 (the caller compares lengths when widths vary)."""
        if self.width is not None:
            start = self.base + i * self.width
            return self.data[start : start + k * self.width]
        return self.data[self.off[i] : self.off[i + k]]

    def same_run(self, i: int, other: _Column, j: int, k: int) -> bool:
        if self.width is not None and other.width is not None:
            return self.width == other.width and self.run(i, k) == other.run(j, k)
        return self._lens(i, k) == other._lens(j, k) and self.run(i, k) == other.run(j, k)

    def _lens(self, i: int, k: int) -> array[int]:
        return array("i", [self.width]) * k if self.width is not None else self.lens[i : i + k]


# A row kept for the rename pass: (path, sha256, size), as bytes.
_Row = tuple[bytes, bytes, int]


class _Side:
    """One table's rows in path order, a batch at a time: the current batch's columns and a
    position in it. The totals (rows, bytes) add up as batches are read."""

    path: _Column
    sha: _Column
    size: npt.NDArray[np.int64]

    def __init__(self, batches: Iterable[pa.RecordBatch]) -> None:
        self._batches: Iterator[pa.RecordBatch] = iter(batches)
        self.rows = self.bytes = 0
        self.i = self.n = 0
        self.done = False
        self._load()

    def _load(self) -> None:
        if self.n:  # the batch done with goes before the next is read: one batch per side at a time
            del self.path, self.sha, self.size
        for batch in self._batches:
            if batch.num_rows:
                self.path = _Column(batch.column("path"))
                self.sha = _Column(batch.column("sha256"))
                self.size = _numpy(batch.column("size"))
                self.i, self.n = 0, batch.num_rows
                self.rows += self.n
                self.bytes += int(self.size.sum())
                return
        self.i = self.n = 0
        self.done = True

    def left(self) -> int:
        """Rows left in the current batch."""
        return self.n - self.i

    def skip(self, k: int) -> None:
        self.i += k
        if self.i >= self.n:
            self._load()

    def row(self) -> _Row:
        i = self.i
        return self.path.row(i), self.sha.row(i), int(self.size[i])


_LONG, _SHORT = 1024, 16


def _same(a: _Side, b: _Side, k: int) -> bool:
    """Whether the next ``k`` rows of both sides (all in their current batches) are equal."""
    return a.path.same_run(a.i, b.path, b.i, k) and a.sha.same_run(a.i, b.sha, b.i, k)


def diff_batches(a_batches: Iterable[pa.RecordBatch], b_batches: Iterable[pa.RecordBatch], a_ref: str = "a",
                 b_ref: str = "b") -> FileDiff:
    """One merge pass over two path-sorted streams of batches (path, sha256, size), of any sizes.

    Holds one batch per side and the rows that differ; unchanged stretches are skipped a block
    at a time by comparing their bytes, only blocks with a difference are merged row by row.
    (UTF-8 bytes sort as the paths' code points do, the order the tables are in.)
    """
    a, b = _Side(a_batches), _Side(b_batches)
    removed_rows: list[_Row] = []
    added_rows: list[_Row] = []
    modified: list[str] = []
    mod_delta = 0
    # Most of a diff of two versions is unchanged: long equal runs are tried first; once one
    # differs, short ones until past it, then rows one by one in a short block that differs.
    short_for = 0  # rows to go before a long run is tried again
    while not (a.done or b.done):
        k = min(a.left(), b.left())
        if short_for <= 0 and k >= _LONG:
            if _same(a, b, _LONG):
                a.skip(_LONG)
                b.skip(_LONG)
                continue
            short_for = _LONG
        short_for -= _SHORT
        if k >= _SHORT and _same(a, b, _SHORT):
            a.skip(_SHORT)
            b.skip(_SHORT)
            continue
        for _ in range(_SHORT):
            if a.done or b.done:
                break
            a_path, b_path = a.path.row(a.i), b.path.row(b.i)
            if a_path == b_path:
                if a.sha.row(a.i) != b.sha.row(b.i):
                    modified.append(a_path.decode())
                    mod_delta += int(b.size[b.i]) - int(a.size[a.i])
                a.skip(1)
                b.skip(1)
            elif a_path < b_path:
                removed_rows.append(a.row())
                a.skip(1)
            else:
                added_rows.append(b.row())
                b.skip(1)
    for side, rows in ((a, removed_rows), (b, added_rows)):
        while not side.done:
            rows.append(side.row())
            side.skip(1)
    unchanged = a.rows - len(removed_rows) - len(modified)

    # Renames: pair removed and added paths with the same content, one to one.
    added_by_sha: dict[bytes, list[int]] = {}
    for k, (_, sha, _) in enumerate(added_rows):
        added_by_sha.setdefault(sha, []).append(k)
    renamed: list[tuple[str, str]] = []
    renamed_to: set[int] = set()
    removed: list[str] = []
    removed_bytes = 0
    for path, sha, size in removed_rows:
        targets = added_by_sha.get(sha)
        if targets:
            to = targets.pop(0)
            renamed.append((path.decode(), added_rows[to][0].decode()))
            renamed_to.add(to)
        else:
            removed.append(path.decode())
            removed_bytes += size
    added, added_bytes = [], 0
    for k, (path, _, size) in enumerate(added_rows):
        if k not in renamed_to:
            added.append(path.decode())
            added_bytes += size
    return FileDiff(
        a=a_ref, b=b_ref, added=added, removed=removed, modified=modified, renamed=renamed, unchanged=unchanged,
        bytes={"a": a.bytes, "b": b.bytes, "added": added_bytes, "removed": removed_bytes, "modified_delta": mod_delta,
               "delta": b.bytes - a.bytes},
    )


_COLUMNS = ["path", "sha256", "size"]


def diff_tables(a_table: pa.Table, b_table: pa.Table, a_ref: str = "a", b_ref: str = "b") -> FileDiff:
    """``diff_batches`` of two path-sorted tables already in memory."""
    return diff_batches(a_table.select(_COLUMNS).to_batches(), b_table.select(_COLUMNS).to_batches(), a_ref, b_ref)


def diff_files(a: Dataset, b: Dataset) -> FileDiff:
    """The diff of two versions, their files tables read from the store a row group at a time."""
    return diff_batches(a.file_batches(_COLUMNS), b.file_batches(_COLUMNS), a.ref, b.ref)
