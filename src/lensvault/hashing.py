"""sha256 of files, in parallel, never twice for an unchanged file.

Big batches are spread over worker processes (``lensvault.parallel`` says why
not threads); each worker reads small files into one reused buffer. Unchanged files (same inode, size,
mtime_ns and ctime_ns) take their hash from the stat cache in ``state.py``.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol, TypeVar, overload

__all__ = ["FileHash", "default_workers", "hash_bytes", "hash_file", "hash_files", "hash_stream", "read_small"]

# Files up to this size are read in one call into a reused buffer, so the header
# parser (image dimensions), the hash and a copy into the store share one read.
SMALL_FILE = 8 * 1024 * 1024
CHUNK = 1024 * 1024
HEAD = 64 * 1024

_local = threading.local()
_T = TypeVar("_T")


def default_workers() -> int:
    return max(2, min(16, (os.cpu_count() or 2) * 2))


def hash_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class FileHash:
    oid: str
    size: int
    head: bytes  # the first bytes of the file, for media sniffing


def _buffer() -> memoryview:
    # One buffer per thread, reused: a fresh bytes object per file costs an
    # mmap/munmap pair for anything over 128 KB and page faults for the rest,
    # more than reading a small file does.
    mv = getattr(_local, "mv", None)
    if mv is None:
        mv = _local.mv = memoryview(bytearray(SMALL_FILE))
    return mv


class BinaryReader(Protocol):
    """A binary file read in chunks."""

    def read(self, size: int = -1, /) -> bytes: ...


class Readable(Protocol):
    """An unbuffered binary file (``open(path, "rb", buffering=0)``)."""

    def readinto(self, buffer: memoryview, /) -> int: ...


def read_small(f: Readable | int) -> memoryview | None:
    """The whole content of an open binary file (or file descriptor) if it is under SMALL_FILE, else None.

    The view is into this thread's reused buffer: valid until the next call.
    """
    mv = _buffer()
    if isinstance(f, int):  # a raw descriptor: no file object, no extra fstat
        n = os.readv(f, [mv])
        while 0 < n < SMALL_FILE:  # a short read is not necessarily the end
            more = os.readv(f, [mv[n:]])
            if not more:
                return mv[:n]
            n += more
        return None if n else mv[:0]
    n = f.readinto(mv)
    while 0 < n < SMALL_FILE:
        more = f.readinto(mv[n:])
        if not more:
            return mv[:n]
        n += more
    return None if n else mv[:0]


def hash_file(path: str | os.PathLike[str], head_size: int = HEAD) -> FileHash:
    with open(path, "rb", buffering=0) as f:
        data = read_small(f)
        if data is not None:
            return FileHash(hashlib.sha256(data).hexdigest(), len(data), bytes(data[:head_size]))
        f.seek(0)
        return hash_stream(f, head_size)


def hash_stream(f: BinaryReader, head_size: int = HEAD) -> FileHash:
    """The hash of what is left to read in ``f``, read in chunks (the loop for files too big
    for ``read_small``; every reader of a big file hashes through it)."""
    h = hashlib.sha256()
    size = 0
    head = b""
    while chunk := f.read(CHUNK):
        if not head:
            head = chunk[:head_size]
        h.update(chunk)
        size += len(chunk)
    return FileHash(h.hexdigest(), size, head)


def _apply(fn: Callable[[str], _T], part: list[str]) -> list[_T]:
    return [fn(p) for p in part]


@overload
def hash_files(paths: Iterable[str], *, on_done: Callable[[int], None] | None = None
               ) -> Iterator[tuple[str, FileHash]]: ...
@overload
def hash_files(paths: Iterable[str], *, on_done: Callable[[int], None] | None = None, fn: Callable[[str], _T]
               ) -> Iterator[tuple[str, _T]]: ...
def hash_files(
    paths: Iterable[str],
    *,
    on_done: Callable[[int], None] | None = None,
    fn: Callable[[str], object] = hash_file,
) -> Iterator[tuple[str, object]]:
    """Yield (path, fn(path)) in input order, over worker processes for big batches.

    ``fn`` must be picklable by reference (see ``lensvault.parallel``);
    exceptions propagate from the first failure.
    """
    from functools import partial

    from lensvault.parallel import map_chunks

    paths = list(paths)
    part = 0
    for results in map_chunks(partial(_apply, fn), paths, on_done=on_done):
        yield from zip(paths[part : part + len(results)], results)
        part += len(results)
