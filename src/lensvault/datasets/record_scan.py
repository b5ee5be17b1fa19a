"""A folder's walk merged with its stat-cache record: what changed since the record, in path order.

Both sides come in path order (``scan.walk_files`` and ``FolderRecord.items``), so the
comparison is a merge: what it holds is the files that changed and the entries whose
file is gone, never the folder. An unchanged file costs one ``lstat`` and a tuple
comparison. A big folder is walked by this process and a forked child, each over a
contiguous share of the top-level entries and the matching range of the record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lensvault.datasets.scan import PartialScanRefused, ScannedFile, share_bounds, walk_files
from lensvault.parallel import ForkedCall

if TYPE_CHECKING:
    from pathlib import Path

    from lensvault.folder_record import FolderRecord
    from lensvault.state import Entry

__all__ = ["RecordScan", "scan_record"]

# Below this many entries the walk is too short to share with a child.
_SHARED_FROM = 5000


@dataclass
class RecordScan:
    """What a walk found against a record."""

    changed: list[tuple[ScannedFile, Entry | None]] = field(default_factory=list)  # new or restat'ed, with the old entry
    gone: list[tuple[str, Entry]] = field(default_factory=list)  # entries whose file is no longer there
    same: int = 0  # files whose stat is the entry's
    damaged: bool = False  # a chunk of the record could not be read: its entries were misses

    @property
    def unchanged(self) -> bool:
        return not (self.changed or self.gone or self.damaged)

    def __iadd__(self, other: RecordScan) -> RecordScan:
        self.changed += other.changed
        self.gone += other.gone
        self.same += other.same
        self.damaged = self.damaged or other.damaged
        return self


def scan_record(src: Path, record: FolderRecord | None, *, exclude_dirs: tuple[Path, ...] = (),
                trusted: tuple[str, ...] = ()) -> RecordScan:
    """Compare ``src`` with ``record`` (None: no record, every file is new), in two processes if big."""
    if record is None or record.count < _SHARED_FROM:
        return _scan(src, record, exclude_dirs, trusted, None)
    try:
        with ForkedCall(_scan, src, record, exclude_dirs, trusted, (1, 2)) as other:
            out = _scan(src, record, exclude_dirs, trusted, (0, 2))
            out += other.result()
    except PartialScanRefused:  # a symlinked folder: only a whole walk follows it consistently
        return _scan(src, record, exclude_dirs, trusted, None)
    out.changed.sort(key=lambda c: c[0].rel)
    out.gone.sort()
    return out


def _scan(src: Path, record: FolderRecord | None, exclude_dirs: tuple[Path, ...], trusted: tuple[str, ...],
          part: tuple[int, int] | None) -> RecordScan:
    out = RecordScan()
    bounds = ("", None) if part is None else share_bounds(src, part, exclude_dirs=exclude_dirs, trusted=trusted)
    if bounds is None:
        return out
    entries = record.items(*bounds) if record is not None else iter(())
    changed, gone = out.changed, out.gone
    same = 0
    at, entry = next(entries, (None, None))
    for rel, path, st, linked in walk_files(src, exclude_dirs=exclude_dirs, part=part, trusted=trusted):
        while at is not None and at < rel:
            gone.append((at, entry))  # type: ignore[arg-type]
            at, entry = next(entries, (None, None))
        if at == rel:
            e = entry
            at, entry = next(entries, (None, None))
            if (not linked and e[0] == st.st_ino and e[1] == st.st_size and e[2] == st.st_mtime_ns  # type: ignore[index]
                    and e[3] == st.st_ctime_ns):  # type: ignore[index]
                same += 1
                continue
            changed.append((ScannedFile(rel, path, st), e))
        else:
            changed.append((ScannedFile(rel, path, st), None))
    while at is not None:
        gone.append((at, entry))  # type: ignore[arg-type]
        at, entry = next(entries, (None, None))
    out.same = same
    out.damaged = record is not None and record.damaged
    return out
