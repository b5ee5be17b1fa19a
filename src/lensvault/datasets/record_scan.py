"""A folder's walk merged with its stat-cache record: what changed since the record, in path order.

Both sides come in path order (``scan.walk_files`` and ``FolderRecord.items``), so the
comparison is a merge: what it holds is the files that changed and the entries whose
file is gone, never the folder. An unchanged file costs one ``lstat`` and a tuple
comparison. A big folder is walked by this process and a forked child, each over a
contiguous share of the top-level entries and the matching range of the record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from lensvault.datasets.scan import PartialScanRefused, ScannedFile, share_bounds, walk_files
from lensvault.parallel import ForkedCall
from lensvault.store.inode_index import SharedListing

if TYPE_CHECKING:
    from pathlib import Path

    from lensvault.folder_record import FolderRecord
    from lensvault.state import Entry
    from lensvault.store.base import ObjectStore

__all__ = ["RecordScan", "lost_objects", "scan_record"]

# Below this many entries the walk is too short to share with a child.
_SHARED_FROM = 5000


@dataclass
class RecordScan:
    """What a walk found against a record."""

    changed: list[tuple[ScannedFile, Entry | None]] = field(default_factory=list)  # new or restat'ed, with the old entry
    gone: list[tuple[str, Entry]] = field(default_factory=list)  # entries whose file is no longer there
    same: int = 0  # files whose stat is the entry's
    damaged: bool = False  # a chunk of the record could not be read: its entries were misses
    # Unchanged files (with their entries) whose object the store lacks or holds with another size
    # (None: not asked).
    lost: list[tuple[str, Entry]] | None = None
    # More than ``changed_up_to`` files changed or gone: the walk stopped there, and the lists
    # above are empty (the caller reads the folder as a new one, in a stream).
    too_many: bool = False

    @property
    def unchanged(self) -> bool:
        return not (self.changed or self.gone or self.damaged)

    def __iadd__(self, other: RecordScan) -> RecordScan:
        self.changed += other.changed
        self.gone += other.gone
        self.same += other.same
        self.damaged = self.damaged or other.damaged
        self.too_many = self.too_many or other.too_many
        if self.too_many:
            self.changed, self.gone = [], []
        if self.lost is not None and other.lost is not None:
            self.lost += other.lost
        else:
            self.lost = None
        return self


def scan_record(src: Path, record: FolderRecord | None, *, exclude_dirs: tuple[Path, ...] = (),
                trusted: tuple[str, ...] = (), need_media: bool = False, store: ObjectStore | None = None,
                hardlink: bool = False, changed_up_to: int | None = None) -> RecordScan:
    """Compare ``src`` with ``record`` (None: no record, every file is new), in two processes if big.

    ``need_media``: an entry without media counts as changed (a snapshot reads it). ``store``: ask
    it, a chunk at a time, whether it holds each unchanged file's object (``RecordScan.lost``);
    ``hardlink``: and whether the file is still that object (the same inode). ``changed_up_to``:
    stop once a process has found more files changed or gone than this (``RecordScan.too_many``).
    """
    asker: _Asker | SharedListing | None = store
    if store is not None and hardlink and record is not None and record.count >= _SHARED_FROM:
        # Listed with inodes, half by each process of the walk (see SharedListing).
        asker = store.inode_listing(record.count) or store
    args = (src, record, exclude_dirs, trusted, need_media, asker, hardlink, changed_up_to)
    if record is None or record.count < _SHARED_FROM:
        return _scan(*args, None)
    try:
        with ForkedCall(_scan, *args, (1, 2)) as other:
            shared = asker if isinstance(asker, SharedListing) else None
            if shared is not None and not other.forked:
                shared.alone = True  # part 1 runs here, after part 0: nobody to swap halves with
            try:
                out = _scan(*args, (0, 2))
            finally:
                if shared is not None:
                    shared.close()  # (part 0 failed before its swap: part 1 must not wait for it)
            out += other.result()
    except PartialScanRefused:  # a symlinked folder: only a whole walk follows it consistently
        return _scan(*args, None)
    out.changed.sort(key=lambda c: c[0].rel)
    out.gone.sort()
    return out if not out.too_many else RecordScan(too_many=True, damaged=out.damaged)


def lost_objects(store: ObjectStore, record: FolderRecord, found: RecordScan, hardlink: bool) -> list[tuple[str, Entry]]:
    """``RecordScan.lost`` of a scan made without the store: the record read again, a chunk at a time."""
    moved = {f.rel for f, _ in found.changed}
    moved.update(rel for rel, _ in found.gone)
    lost: list[tuple[str, Entry]] = []
    batch: list[tuple[str, Entry]] = []
    for rel, entry in record.items():
        if rel not in moved:
            batch.append((rel, entry))
            if len(batch) >= _ASK_EVERY:
                lost += _absent(store, batch, hardlink)
                batch = []
    return lost + _absent(store, batch, hardlink)


_ASK_EVERY = 8192


class _Asker(Protocol):
    """What is asked whether objects are there: the store, or its ``inode_index``."""

    def absent_or_damaged(self, oids: list[str], sizes: list[int], inodes: list[int] | None = None) -> list[int]: ...


def _absent(store: _Asker, batch: list[tuple[str, Entry]], hardlink: bool) -> list[tuple[str, Entry]]:
    if not batch:
        return []
    bad = store.absent_or_damaged([e[4] for _, e in batch], [e[1] for _, e in batch],
                                  [e[0] for _, e in batch] if hardlink else None)
    return [batch[i] for i in bad]


def _scan(src: Path, record: FolderRecord | None, exclude_dirs: tuple[Path, ...], trusted: tuple[str, ...],
          need_media: bool, asker: _Asker | SharedListing | None, hardlink: bool, changed_up_to: int | None,
          part: tuple[int, int] | None) -> RecordScan:
    out = RecordScan(lost=[] if asker is not None else None)
    unchanged: list[tuple[str, Entry]] = []  # waiting to be asked of the store
    bounds = ("", None) if part is None else share_bounds(src, part, exclude_dirs=exclude_dirs, trusted=trusted)
    store = asker.index(None if part is None else part[0]) if isinstance(asker, SharedListing) else asker
    if bounds is None:
        return out
    entries = record.items(*bounds) if record is not None else iter(())
    changed, gone = out.changed, out.gone
    same = 0
    most = changed_up_to if changed_up_to is not None else -1
    at, entry = next(entries, (None, None))
    for rel, path, st, linked in walk_files(src, exclude_dirs=exclude_dirs, part=part, trusted=trusted):
        if most >= 0 and len(changed) + len(gone) > most:
            return RecordScan(too_many=True)  # (checked once a file: the lists hold one more at most)
        while at is not None and at < rel:
            gone.append((at, entry))  # type: ignore[arg-type]
            at, entry = next(entries, (None, None))
        if at == rel:
            e = entry
            at, entry = next(entries, (None, None))
            if (not linked and e[0] == st.st_ino and e[1] == st.st_size and e[2] == st.st_mtime_ns  # type: ignore[index]
                    and e[3] == st.st_ctime_ns and (not need_media or e[5] is not None)):  # type: ignore[index]
                same += 1
                if store is not None:
                    unchanged.append((rel, e))  # type: ignore[arg-type]
                    if len(unchanged) >= _ASK_EVERY:
                        out.lost += _absent(store, unchanged, hardlink)  # type: ignore[operator]
                        unchanged = []
                continue
            changed.append((ScannedFile(rel, path, st), e))
        else:
            changed.append((ScannedFile(rel, path, st), None))
    while at is not None:
        gone.append((at, entry))  # type: ignore[arg-type]
        if most >= 0 and len(changed) + len(gone) > most:
            return RecordScan(too_many=True)
        at, entry = next(entries, (None, None))
    if store is not None:
        out.lost += _absent(store, unchanged, hardlink)  # type: ignore[operator]
    out.same = same
    out.damaged = record is not None and record.damaged
    return out
