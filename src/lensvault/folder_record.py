"""A folder's stat-cache record on disk: its entries in path order, in chunks read one at a time.

A record used to be one marshal blob of every entry: loading it for a million-file folder
held ~550 MB of Python objects before the walk began, and any command that read it
(``status``, a re-snapshot, a checkout's save) grew with the folder. Now it is a sequence
of chunks of ``CHUNK`` entries, sorted by path, and a footer that names each chunk's first
path, offset, length and checksum. A reader keeps the footer (a few KB at 10M entries) and
decodes one chunk at a time, so a walk in path order costs one chunk of memory, whatever
the folder's size. A writer is fed entries in path order and never holds more than a chunk.

File layout::

    TAG "\\n"
    chunk 0 … chunk k-1    marshal((paths, entries)), each
    footer                 marshal((digest, count, [(first path, offset, length, crc32), …]))
    tail                   footer length (8 bytes), footer crc32 (4 bytes), MAGIC

A torn or foreign record has no valid tail: a miss. A chunk whose checksum fails is a miss
for its entries only (``FolderRecord.damaged`` says so, and the record's digest is then not
trusted); its files are read again like new ones. Delta segments (``state.FileState``) name a
record by its token, ``(footer crc32, file length)``, and are applied here as the chunks are
read, so a reader never builds the merged whole.
"""

from __future__ import annotations

import marshal
import os
import struct
import threading
import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from lensvault.state import Entry

__all__ = ["CHUNK", "FolderRecord", "RecordWriter", "Token", "open_record"]

Token = tuple[int, int]
CHUNK = 8192  # entries a chunk: ~4 MB decoded, ~1 MB on disk
MAGIC = b"LVFR"
_TAIL = struct.Struct(">QI4s")


class RecordWriter:
    """Write a record to a temporary file beside ``path``, a chunk at a time; ``commit`` renames it
    into place. Best-effort like the whole cache: a write that fails (a full disk) leaves the old
    record and no temporary file, and ``commit`` returns None."""

    def __init__(self, path: str, tag: bytes) -> None:
        self.path = path
        self.tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        self.paths: list[str] = []
        self.entries: list[Entry] = []
        self.chunks: list[tuple[str, int, int, int]] = []
        self.count = 0
        self.last = ""
        self.offset = 0
        self.f: BinaryIO | None = None
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            self.f = open(self.tmp, "wb")  # noqa: SIM115 - closed by commit or abort
            self.f.write(tag + b"\n")
            self.offset = len(tag) + 1
        except OSError:
            self.abort()

    def add(self, rel: str, entry: Entry) -> None:
        if self.count and rel <= self.last:
            raise ValueError(f"stat-cache entries out of path order: {rel!r} after {self.last!r}")
        self.last = rel
        self.paths.append(rel)
        self.entries.append(entry)
        self.count += 1
        if len(self.paths) >= CHUNK:
            self._flush()

    def _flush(self) -> None:
        if not self.paths:
            return
        data = marshal.dumps((self.paths, self.entries), marshal.version)
        if self.f is not None:
            try:
                self.f.write(data)
            except OSError:
                self.abort()
        self.chunks.append((self.paths[0], self.offset, len(data), zlib.crc32(data)))
        self.offset += len(data)
        self.paths, self.entries = [], []

    def commit(self, digest: str | None) -> Token | None:
        self._flush()
        f = self.f
        if f is None:
            return None
        footer = marshal.dumps((digest, self.count, self.chunks), marshal.version)
        crc = zlib.crc32(footer)
        try:
            f.write(footer)
            f.write(_TAIL.pack(len(footer), crc, MAGIC))
            size = f.tell()
            f.close()
            self.f = None
            os.replace(self.tmp, self.path)
        except OSError:
            self.abort()
            return None
        return crc, size

    def abort(self) -> None:
        if self.f is not None:
            try:
                self.f.close()
            except OSError:
                pass
            self.f = None
        try:
            os.unlink(self.tmp)
        except OSError:
            pass


def open_record(path: str, tag: bytes) -> FolderRecord | None:
    """The record at ``path``, if it is whole and written by this format (None otherwise)."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - kept open by the record: a rename does not move it
    except OSError:
        return None
    try:
        size = os.fstat(f.fileno()).st_size
        head = f.read(len(tag) + 1)
        if head != tag + b"\n" or size < len(head) + _TAIL.size:
            raise ValueError
        f.seek(size - _TAIL.size)
        length, crc, magic = _TAIL.unpack(f.read(_TAIL.size))
        if magic != MAGIC or length > size - len(head) - _TAIL.size:
            raise ValueError
        f.seek(size - _TAIL.size - length)
        footer = f.read(length)
        if zlib.crc32(footer) != crc:
            raise ValueError
        digest, count, chunks = marshal.loads(footer)
        if not isinstance(count, int) or not isinstance(chunks, list) or not (digest is None or isinstance(digest, str)):
            raise ValueError
    except (OSError, ValueError, EOFError, TypeError, struct.error):
        f.close()
        return None
    return FolderRecord(f, (crc, size), digest, count, chunks)


class FolderRecord:
    """A record as read: the footer, an open file, and the delta segments applied on top.

    ``items(lo, hi)`` yields the entries with ``lo <= path < hi`` in path order, decoding only the
    chunks that hold them. ``digest`` and ``count`` are those of the record with its segments.
    """

    def __init__(self, f: BinaryIO, token: Token, digest: str | None, count: int,
                 chunks: list[tuple[str, int, int, int]]) -> None:
        self.f, self.token, self.digest, self.count = f, token, digest, count
        self.chunks = chunks
        self.firsts = [c[0] for c in chunks]
        self.changes: list[tuple[str, Entry | None]] = []  # the segments' changes, merged, by path
        self._change_paths: list[str] = []
        self.damaged = False

    def apply(self, changes: Mapping[str, Entry | None], digest: str | None, count: int) -> None:
        """Put a delta segment's changes on top (segments in order)."""
        merged = dict(self.changes)
        merged.update(changes)
        self.changes = sorted(merged.items())
        self._change_paths = [p for p, _ in self.changes]
        self.digest, self.count = digest, count

    def close(self) -> None:
        self.f.close()

    def __enter__(self) -> FolderRecord:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _chunk(self, i: int) -> tuple[list[str], list[Entry]]:
        _, offset, length, crc = self.chunks[i]
        try:
            # pread, not seek and read: a forked child reading the same record shares the offset.
            data = os.pread(self.f.fileno(), length, offset)
            if zlib.crc32(data) == crc:
                paths, entries = marshal.loads(data)
                if isinstance(paths, list) and isinstance(entries, list) and len(paths) == len(entries):
                    return paths, entries
        except (OSError, ValueError, EOFError, TypeError):
            pass
        self.damaged = True  # its entries are misses; the digest no longer describes what is read
        return [], []

    def items(self, lo: str = "", hi: str | None = None) -> Iterator[tuple[str, Entry]]:
        """The entries with ``lo <= path < hi`` (``hi`` None: to the end), in path order."""
        n = len(self.chunks)
        first = max(0, bisect_right(self.firsts, lo) - 1)
        last = n - 1 if hi is None else max(0, bisect_left(self.firsts, hi) - 1)
        cp = self._change_paths
        for i in range(first, last + 1) if n else ():
            paths, entries = self._chunk(i)
            # This chunk's share of the changes: those from its first path (or the start) to the next chunk's.
            c_lo = bisect_left(cp, self.firsts[i]) if i else 0
            c_hi = bisect_left(cp, self.firsts[i + 1]) if i + 1 < n else len(cp)
            pairs: Any = zip(paths, entries)
            if c_lo < c_hi:
                merged = dict(pairs)
                for rel, entry in self.changes[c_lo:c_hi]:
                    if entry is None:
                        merged.pop(rel, None)
                    else:
                        merged[rel] = entry
                pairs = sorted(merged.items())
            elif lo or hi is not None:
                pairs = list(pairs)
            else:
                yield from pairs
                continue
            yield from _within(pairs, lo, hi)
        if not n:  # no chunk: the changes are the record
            yield from _within([(p, e) for p, e in self.changes if e is not None], lo, hi)


def _within(pairs: list[tuple[str, Entry]], lo: str, hi: str | None) -> Iterator[tuple[str, Entry]]:
    if not pairs:
        return
    if pairs[0][0] >= lo and (hi is None or pairs[-1][0] < hi):
        yield from pairs
        return
    keys = [p for p, _ in pairs]
    start = bisect_left(keys, lo)
    stop = len(pairs) if hi is None else bisect_left(keys, hi)
    yield from pairs[start:stop]
