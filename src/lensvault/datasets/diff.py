"""File-level diff of two dataset versions: added, removed, modified, renamed.

Files tables are sorted by path, so the diff is one merge pass over the two
(no hashing of a million paths); a rename is a removed path and an added path
with the same content.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pyarrow as pa

    from lensvault.datasets.handle import Dataset

__all__ = ["FileDiff", "diff_files"]


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


def _numpy(column: pa.ChunkedArray) -> npt.NDArray[np.int64]:
    """A chunked int64 column as one numpy array, read from the Arrow buffers.

    Not ``to_numpy()``: with pandas installed, pyarrow imports it there (~0.3 s),
    a third of the budget for diffing two million-file versions.
    """
    import numpy as np

    parts = []
    for c in column.chunks:
        if c.null_count:
            parts.append(np.array([v if v is not None else 0 for v in c.to_pylist()], dtype=np.int64))
        else:
            parts.append(np.frombuffer(c.buffers()[1], dtype=np.int64, count=len(c), offset=c.offset * 8))
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


class _Column:
    """A string column as Arrow's bytes: rows and runs of rows are sliced and compared as
    ``bytes``, so a million-row diff makes Python strings only for the rows that differ
    (``to_pylist`` of the paths and hashes of two million-row tables took ~0.7 s)."""

    def __init__(self, chunked: pa.ChunkedArray) -> None:
        import numpy as np
        import pyarrow as pa

        arr = chunked.combine_chunks() if chunked.num_chunks != 1 else chunked.chunk(0)
        if pa.types.is_large_string(arr.type):
            arr = arr.cast(pa.string())
        n = len(arr)
        if arr.null_count:
            raise ValueError("a files table has an empty path or hash")
        bufs = arr.buffers()
        off = np.frombuffer(bufs[1], dtype=np.int32, count=n + 1, offset=arr.offset * 4) if n else np.zeros(1, np.int32)
        self.data = bufs[2].to_pybytes() if n and bufs[2] is not None else b""
        lens = np.diff(off)
        # Hashes all have the same width: a row's bytes are found by arithmetic, no offsets list.
        self.width = int(lens[0]) if n and bool((lens == lens[0]).all()) else None
        self.base = int(off[0])
        # Offsets and lengths per row only when widths vary (else unused: empty).
        self.off: list[int] = [] if self.width is not None else off.tolist()
        self.lens: list[int] = [] if self.width is not None else lens.tolist()

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

    def _lens(self, i: int, k: int) -> list[int]:
        return [self.width] * k if self.width is not None else self.lens[i : i + k]


def diff_tables(a_table: pa.Table, b_table: pa.Table, a_ref: str = "a", b_ref: str = "b") -> FileDiff:
    """One merge pass over two path-sorted tables (files tables are always sorted by path)."""
    pa_, sa = _Column(a_table["path"]), _Column(a_table["sha256"])
    pb_, sb = _Column(b_table["path"]), _Column(b_table["sha256"])
    # Sizes are looked up only for the few changed rows: numpy views, not Python lists.
    za = _numpy(a_table["size"])
    zb = _numpy(b_table["size"])
    removed_i: list[int] = []
    added_j: list[int] = []
    modified: list[str] = []
    mod_delta = 0
    i = j = 0
    na, nb = a_table.num_rows, b_table.num_rows
    block = 16
    while i < na and j < nb:
        # Unchanged stretches are skipped a block at a time by comparing their bytes;
        # only blocks with a difference are merged row by row. (UTF-8 bytes sort as the
        # paths' code points do, the order the tables are in.)
        if (i + block <= na and j + block <= nb and pa_.same_run(i, pb_, j, block)
                and sa.same_run(i, sb, j, block)):
            i += block
            j += block
            continue
        for _ in range(block):
            if i >= na or j >= nb:
                break
            a_path, b_path = pa_.row(i), pb_.row(j)
            if a_path == b_path:
                if sa.row(i) != sb.row(j):
                    modified.append(a_path.decode())
                    mod_delta += int(zb[j]) - int(za[i])
                i += 1
                j += 1
            elif a_path < b_path:
                removed_i.append(i)
                i += 1
            else:
                added_j.append(j)
                j += 1
    removed_i.extend(range(i, na))
    added_j.extend(range(j, nb))
    unchanged = na - len(removed_i) - len(modified)

    # Renames: pair removed and added paths with the same content, one to one.
    added_by_sha: dict[bytes, list[int]] = {}
    for k in added_j:
        added_by_sha.setdefault(sb.row(k), []).append(k)
    renamed: list[tuple[str, str]] = []
    renamed_to: set[int] = set()
    removed: list[str] = []
    removed_bytes = 0
    for k in removed_i:
        targets = added_by_sha.get(sa.row(k))
        if targets:
            to = targets.pop(0)
            renamed.append((pa_.row(k).decode(), pb_.row(to).decode()))
            renamed_to.add(to)
        else:
            removed.append(pa_.row(k).decode())
            removed_bytes += int(za[k])
    added, added_bytes = [], 0
    for k in added_j:
        if k not in renamed_to:
            added.append(pb_.row(k).decode())
            added_bytes += int(zb[k])
    total_a, total_b = int(za.sum()), int(zb.sum())
    return FileDiff(
        a=a_ref, b=b_ref, added=added, removed=removed, modified=modified, renamed=renamed, unchanged=unchanged,
        bytes={"a": total_a, "b": total_b, "added": added_bytes, "removed": removed_bytes, "modified_delta": mod_delta,
               "delta": total_b - total_a},
    )


def diff_files(a: Dataset, b: Dataset) -> FileDiff:
    cols = ["path", "sha256", "size"]
    return diff_tables(a.files(cols), b.files(cols), a.ref, b.ref)
