"""The stat cache: never re-hash a file whose (inode, size, mtime_ns, ctime_ns) is unchanged.

Like git's index, it is kept per folder: for each folder LensVault has read
(snapshotted, checked out, compared), one record maps every relative path to
its stat key, sha256 and media. A record is one file of marshal chunks in path
order (``folder_record.py``), so reading the cache of a 50,000-file folder is a few
reads and a ~40 ms decode, where a SQLite row per file cost ~0.2 s to fetch and
~0.3 s to write (and a SQLite blob twice the write, WAL then checkpoint); and a
walk in path order holds one chunk of it, whatever the folder's size. The same goes for each snapshot's files-table
rows (the "listing"), which spare ``status``, ``checkout`` and an unchanged
re-snapshot the pyarrow import.

An entry is trusted only when its file cannot have changed unseen since it was
read: like git's "racy git" rule, a key whose mtime or ctime is not safely older
than the moment the file was stat'ed (``racy``) is cached as *unsure*
(``unsure``: an mtime that never matches), so the next scan reads the file again.
"Safely older" is one timestamp tick: a rewrite within the same tick leaves the key
unchanged. A timestamp that is a whole millisecond (a filesystem with 1 s or 2 s
timestamps: ext4 with 128-byte inodes, vfat, exFAT, HFS+) gets a 2 s margin; one
with nanoseconds gets 20 ms (the kernel's coarse clock advances once per tick,
at most 10 ms).

It is machine-local (inodes mean nothing elsewhere), so it lives in the vault's
``.lensvault/cache/``, not in the catalog, which may be a shared server.
Everything here is best-effort: an unreadable, damaged or foreign record is a
miss, never an error. ``StateBase`` is the interface the vault uses and
``FileState`` its implementation.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import struct
import sys
import threading
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from lensvault.folder_record import FolderRecord

__all__ = ["StatKey", "StateBase", "FileState", "IndexWriter", "merged_entries", "racy", "racy_many", "settles_at", "stat_key", "unsure"]

# (inode, size, mtime_ns, ctime_ns)
StatKey: TypeAlias = tuple[int, int, int, int]
# Index entry: (inode, size, mtime_ns, ctime_ns, sha256, media_type, width, height); media_type
# is None when only the hash is known (e.g. after `status`).
Entry: TypeAlias = tuple[int, int, int, int, str, str | None, int | None, int | None]
# A files-table row: (path, sha256, size, media_type, width, height).
FileRow: TypeAlias = tuple[str, str, int, str, int | None, int | None]


def stat_key(st: os.stat_result) -> StatKey:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


# mtime of an unsure entry: no file has it, so the entry never matches a scan.
UNSURE = -1
_COARSE_TICK = 2_000_000_000  # vfat keeps mtime in 2 s steps
_FINE_TICK = 20_000_000


def _tick(t_ns: int) -> int:
    return _COARSE_TICK if t_ns % 1_000_000 == 0 else _FINE_TICK


def racy(key: StatKey, seen_ns: int, *, ctime: bool = True) -> bool:
    """Whether a file with this key, stat'ed no earlier than ``seen_ns`` (wall clock), may have
    changed within the same timestamp tick afterwards, unseen by the key.

    ``ctime=False`` when the ctime is our own doing (hardlinking a file into the store or
    out to a checkout moves it): only the mtime then tells a change by someone else.
    """
    m, c = key[2], key[3]
    return m + _tick(m) > seen_ns or (ctime and c + _tick(c) > seen_ns)


def racy_many(keys: list, seen_ns: int, *, ctime: bool = True) -> list[int]:
    """Indexes of the keys (None skipped) that ``racy`` would flag, in one pass (a checkout's 50,000)."""
    fine, coarse = seen_ns - _FINE_TICK, seen_ns - _COARSE_TICK
    out = []
    for i, k in enumerate(keys):
        if k is None:
            continue
        m, c = k[2], k[3]
        if (m > coarse and (m > fine or m % 1_000_000 == 0)) or (
                ctime and c > coarse and (c > fine or c % 1_000_000 == 0)):
            out.append(i)
    return out


def settles_at(key: StatKey, *, ctime: bool = True) -> int:
    """The wall-clock time (ns) from which a stat showing ``key`` is no longer racy."""
    m, c = key[2], key[3]
    return max(m + _tick(m), c + _tick(c) if ctime else 0)


def unsure(key: StatKey) -> StatKey:
    """``key`` as cached for a racy file: it never matches, so the file is read again next time."""
    return (key[0], key[1], UNSURE, key[3])


class StateBase(ABC):
    @abstractmethod
    def index(self, folder: str) -> dict[str, Entry]:
        """The cached entries of a folder (absolute, resolved path), by relative path."""

    @abstractmethod
    def save_index(self, folder: str, entries: dict[str, Entry], *, changed: Iterable[str] | None = None,
                   digest: str | None = None) -> None:
        """Replace a folder's entries (files no longer there are simply left out).

        ``changed``: the relative paths whose entries differ from what ``index``
        last returned for this folder (added, modified, removed), if the caller
        knows them; a few changes are then saved without rewriting the whole record.
        ``digest``: the files-table digest of exactly these entries, if known
        (``files_table.rows_digest``), returned by ``index_digest`` with them.
        """

    def index_digest(self, folder: str) -> str | None:
        """The digest saved with the entries ``index`` last returned for this folder, if any."""
        return None

    @abstractmethod
    def index_writer(self, folder: str) -> IndexWriter:
        """A writer of a folder's whole new record, fed entries in path order (a checkout's, one
        batch of its files at a time); the record replaces the old one on ``commit``."""

    def listing(self, snapshot_id: str) -> list[FileRow] | None:
        """A snapshot's files-table rows sorted by path, if cached; None otherwise."""
        return None

    def save_listing(self, snapshot_id: str, rows: list[FileRow]) -> None:  # noqa: B027 - optional: keeping none is allowed
        pass

    def close(self) -> None:  # noqa: B027 - optional: most states hold nothing open
        pass


class IndexWriter(ABC):
    """A folder's new stat-cache record, written as its entries arrive in path order."""

    @abstractmethod
    def add(self, rel: str, entry: Entry) -> None:
        """The next entry; ``rel`` sorts after every path added before it."""

    @abstractmethod
    def commit(self, digest: str | None = None) -> None:
        """Make the record the folder's (``digest``: as for ``save_index``)."""

    def add_sorted(self, entries: Mapping[str, Entry]) -> None:
        """Every entry of a dict, in path order."""
        for rel in sorted(entries):
            self.add(rel, entries[rel])

    def abort(self) -> None:  # noqa: B027 - optional: a writer that holds nothing drops it
        """Leave the folder's old record as it was."""

    def __enter__(self) -> IndexWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()  # (a no-op after ``commit``)


class _RecordIndexWriter(IndexWriter):
    """``FileState``'s writer: the new base record, a chunk at a time (``folder_record.RecordWriter``)."""

    def __init__(self, state: FileState, folder: str) -> None:
        from lensvault.folder_record import RecordWriter

        self.state, self.folder = state, folder
        self.writer: RecordWriter | None = RecordWriter(state._path("index", folder), _TAG)

    def add(self, rel: str, entry: Entry) -> None:
        assert self.writer is not None, "add after commit"
        self.writer.add(rel, entry)

    def commit(self, digest: str | None = None) -> None:
        if self.writer is not None:
            token = self.writer.commit(digest)
            self.writer = None
            self.state._committed(self.folder, token, digest)

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()
            self.writer = None


def merged_entries(items: Iterable[tuple[str, Entry]], changes: list[tuple[str, Entry | None]]
                   ) -> Iterator[tuple[str, Entry]]:
    """``items`` (in path order) with ``changes`` (in path order; None removes) merged in."""
    i, n = 0, len(changes)
    for rel, entry in items:
        while i < n and changes[i][0] < rel:
            if changes[i][1] is not None:
                yield changes[i][0], changes[i][1]  # type: ignore[misc]
            i += 1
        if i < n and changes[i][0] == rel:
            if changes[i][1] is not None:
                yield rel, changes[i][1]  # type: ignore[misc]
            i += 1
            continue
        yield rel, entry
    for rel, changed in changes[i:]:
        if changed is not None:
            yield rel, changed


LISTING_MAX_ROWS = 300_000
# marshal's format belongs to the interpreter: records written by another one are misses.
_TAG = f"lensvault-state-3-{sys.implementation.cache_tag}-{marshal.version}".encode()
_HEADER = struct.Struct(">I")  # crc32 of the payload: a torn or damaged record is a miss, never a wrong hash


def _encode(payload) -> tuple[bytes, bytes]:
    """(header, data) of a record: written one after the other, never joined (a million-file
    record is ~130 MB; joining them held it twice)."""
    data = marshal.dumps(payload, marshal.version)
    return _TAG + b"\n" + _HEADER.pack(zlib.crc32(data)), data


def _decode(blob: bytes, kind: type) -> tuple[Any, tuple[int, int] | None]:
    """(payload, its token) of a record, or (None, None) if damaged, foreign or not a ``kind``."""
    head = len(_TAG) + 1
    if blob[:head] != _TAG + b"\n":
        return None, None
    data = memoryview(blob)[head + _HEADER.size:]
    crc = _HEADER.unpack_from(blob, head)[0]
    if crc != zlib.crc32(data):
        return None, None
    try:
        payload = marshal.loads(data)
    except Exception:  # noqa: BLE001 - any undecodable record is a miss (see the module's doc)
        return None, None
    # (crc, length) names this exact record: a delta records the base it applies to by it.
    return (payload, (crc, len(data))) if isinstance(payload, kind) else (None, None)


class FileState(StateBase):
    """Records as files under ``.lensvault/cache/``: written whole to a temp file and renamed.

    No fsync: a record lost in a crash is only a miss, and checksums turn a torn one into
    a miss too. Concurrent writers of one record: the last rename wins, and each wrote a
    complete, true record.

    A folder's index record is a chunked file in path order (``folder_record.py``): read a
    chunk at a time, so what a walk holds of it does not grow with the folder. After small
    changes delta segments follow it, each ``(the record before it, by token, {rel: entry or
    None}, digest after it, entries after it)``: segment 0 names the base, segment i segment
    i-1. Re-snapshotting a 50,000-file folder in which one file changed then writes a few
    hundred bytes instead of 6.6 MB (~0.1 s).

    What a save writes is proportional to what changed, never to the folder: a save
    writes a new segment with its own changes only; a segment absorbs the newer
    segments that are no larger than it (a binary counter: at most log2(changes)
    segments, and a changed entry is rewritten at most that many times). Reading
    writes nothing. The base is rewritten only when the segments hold more than
    1/DELTA_SHARE of the folder: at 10M entries, a 10M-entry record once per 200,000
    changed entries (50 entries written per entry changed, amortized), where one
    growing delta used to be rewritten whole by every save (up to 200,000 entries
    for a one-file change). The rewrite streams: the old base is read a chunk at a time.

    A segment whose predecessor has since been rewritten (by another process, or a
    save that folded the segments into a new base) is ignored with the ones after
    it; two processes saving at once lose one's changes, which are then only misses.
    """

    # The segments hold at most this share of the folder; then the base is rewritten with them folded in.
    DELTA_SHARE = 50

    def __init__(self, root: str | os.PathLike):
        self.root = os.fspath(root)
        # folder → (base token, delta segments applied [(token, changes)], digest) as last read or written
        self._bases: dict[str, tuple[tuple[int, int] | None, list[tuple[tuple[int, int], dict[str, Entry | None]]],
                                     str | None]] = {}

    def _path(self, kind: str, key: str) -> str:
        return f"{self.root}/{kind}/{hashlib.sha256(key.encode()).hexdigest()[:40]}"

    def _segment(self, folder: str, i: int) -> str:
        """Delta segment ``i`` of a folder (segment 0 is where the one delta record used to be)."""
        path = self._path("delta", folder)
        return f"{path}.{i}" if i else path

    def _read(self, kind: str, key: str, type_: type) -> tuple[Any, tuple[int, int] | None]:
        return self._read_path(self._path(kind, key), type_)

    def _read_path(self, path: str, type_: type) -> tuple[Any, tuple[int, int] | None]:
        try:
            with open(path, "rb") as f:
                return _decode(f.read(), type_)
        except OSError:
            return None, None

    def _write(self, kind: str, key: str, payload: object) -> tuple[int, int] | None:
        """Write a record; its token (see ``_decode``), or None if it could not be written."""
        return self._write_path(self._path(kind, key), payload)

    def _write_path(self, path: str, payload: object) -> tuple[int, int] | None:
        tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        header, data = _encode(payload)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(header)
                f.write(data)
            os.replace(tmp, path)
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            return None
        return _HEADER.unpack_from(header, len(_TAG) + 1)[0], len(data)

    def open_index(self, folder: str) -> FolderRecord | None:
        """A folder's record, to be read in path order a chunk at a time (None if there is none)."""
        from lensvault.folder_record import open_record

        record = open_record(self._path("index", folder), _TAG)
        if record is None:
            self._bases.pop(folder, None)
            return None
        segments: list[tuple[tuple[int, int], dict[str, Entry | None]]] = []
        before = record.token
        while True:  # the chain of segments, each naming the record before it
            seg, seg_token = self._read_path(self._segment(folder, len(segments)), tuple)
            if (seg is None or seg_token is None or len(seg) != 4 or tuple(seg[0]) != before
                    or not isinstance(seg[1], dict)):
                break
            _, changes, digest, count = seg
            record.apply(changes, digest, count)
            segments.append((seg_token, changes))
            before = seg_token
        self._bases[folder] = (record.token, segments, record.digest)
        return record

    def index(self, folder: str) -> dict[str, Entry]:
        record = self.open_index(folder)
        if record is None:
            return {}
        with record:
            entries = dict(record.items())
        if record.damaged:
            self._forget_digest(folder)
        return entries

    def _forget_digest(self, folder: str) -> None:
        """What was read is not what the record's digest describes (a damaged chunk)."""
        known = self._bases.get(folder)
        if known is not None:
            self._bases[folder] = (known[0], known[1], None)

    def index_digest(self, folder: str) -> str | None:
        known = self._bases.get(folder)
        return known[2] if known else None

    def save_index(self, folder: str, entries: dict[str, Entry], *, changed: Iterable[str] | None = None,
                   digest: str | None = None) -> None:
        if changed is not None and self._save_delta(folder, {rel: entries.get(rel) for rel in changed}, digest,
                                                    len(entries)):
            return
        with self.index_writer(folder) as w:
            w.add_sorted(entries)
            w.commit(digest)

    def save_changes(self, folder: str, record: FolderRecord | None, changes: dict[str, Entry | None],
                     digest: str | None, count: int) -> None:
        """Save ``changes`` to the record ``open_index`` last returned (still open): as a delta
        segment, or, when the segments would hold too much of the folder, as a new base made by
        reading the old one a chunk at a time with the changes merged in."""
        if record is not None and self._save_delta(folder, changes, digest, count):
            return
        ordered = sorted(changes.items())
        with self.index_writer(folder) as w:
            for rel, entry in merged_entries(record.items() if record is not None else iter(()), ordered):
                w.add(rel, entry)
            w.commit(digest)

    def _save_delta(self, folder: str, changes: dict[str, Entry | None], digest: str | None, count: int) -> bool:
        """Save ``changes`` as a delta segment, if the folder's base is known and the segments stay small."""
        known = self._bases.get(folder)
        if known is None or known[0] is None:
            return False
        token, segments, _ = known
        segments = list(segments)
        new = changes
        while segments and len(segments[-1][1]) <= len(new):  # the binary counter's carry
            new = {**segments.pop()[1], **new}
        if sum(len(c) for _, c in segments) + len(new) > max(64, count // self.DELTA_SHARE):
            return False
        at = len(segments)
        seg_token = self._write_path(self._segment(folder, at), (segments[-1][0] if segments else token,
                                                                 new, digest, count))
        if seg_token is not None:
            self._bases[folder] = (token, [*segments, (seg_token, new)], digest)
            self._drop_segments(folder, at + 1)  # they named the segment just replaced: ignored now
        else:
            self._bases.pop(folder, None)
        return True

    def index_writer(self, folder: str) -> IndexWriter:
        return _RecordIndexWriter(self, folder)

    def _committed(self, folder: str, token: tuple[int, int] | None, digest: str | None) -> None:
        # The old segments name the old base, so they no longer apply; removing them just saves reads.
        self._drop_segments(folder, 0)
        if token is None:
            self._bases.pop(folder, None)
        else:
            self._bases[folder] = (token, [], digest)

    def _drop_segments(self, folder: str, start: int) -> None:
        """Remove segments ``start``, ``start + 1``, … (up to the first missing one; a segment left
        behind names a record that is gone, so readers ignore it)."""
        i = start
        while True:
            try:
                os.unlink(self._segment(folder, i))
            except OSError:
                return
            i += 1

    def listing(self, snapshot_id: str) -> list[FileRow] | None:
        return self._read("listing", snapshot_id, list)[0]

    def save_listing(self, snapshot_id: str, rows: list[FileRow]) -> None:
        # Very large snapshots are left to Parquet (the record would be hundreds of MB).
        if len(rows) > LISTING_MAX_ROWS or os.path.exists(self._path("listing", snapshot_id)):
            return  # content-addressed: an existing record is the same
        self._write("listing", snapshot_id, list(rows))
