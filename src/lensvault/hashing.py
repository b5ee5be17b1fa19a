"""sha256 of files, in parallel, never twice for an unchanged file.

hashlib releases the GIL while it digests, so a thread pool scales over cores
without the start-up cost of processes. Unchanged files (same inode, size,
mtime_ns and ctime_ns) take their hash from the stat cache in ``state.py``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

__all__ = ["FileHash", "hash_bytes", "hash_file", "hash_files", "default_workers"]

# Files up to this size are read in one call so the header parser (image
# dimensions) and the hash share one read.
SMALL_FILE = 8 * 1024 * 1024
CHUNK = 1024 * 1024


def default_workers() -> int:
    return max(2, min(16, (os.cpu_count() or 2) * 2))


def hash_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class FileHash:
    oid: str
    size: int
    head: bytes  # the first bytes of the file, for media sniffing


def hash_file(path: str | os.PathLike, head_size: int = 64 * 1024) -> FileHash:
    with open(path, "rb", buffering=0) as f:
        data = f.read(SMALL_FILE)
        if len(data) < SMALL_FILE:
            # The whole file serves as the head: slicing it would copy it again.
            return FileHash(hashlib.sha256(data).hexdigest(), len(data), data)
        h = hashlib.sha256(data)
        size = len(data)
        head = data[:head_size]
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
        return FileHash(h.hexdigest(), size, head)


def hash_files(
    paths: Iterable[str],
    *,
    workers: int | None = None,
    on_done: Callable[[int], None] | None = None,
    fn: Callable[[str], object] = hash_file,
) -> Iterator[tuple[str, object]]:
    """Yield (path, fn(path)) in input order; exceptions propagate from the first failure."""
    paths = list(paths)
    if not paths:
        return
    workers = workers or default_workers()
    if len(paths) < 64 or workers == 1:
        for p in paths:
            r = fn(p)
            if on_done:
                on_done(1)
            yield p, r
        return
    # Thread pools ignore map()'s chunksize: one future per file costs more than
    # hashing a small file. Each future takes a batch instead.
    batch = max(16, min(256, len(paths) // (workers * 4) or 16))
    chunks = [paths[i : i + batch] for i in range(0, len(paths), batch)]

    def run(chunk):
        return [fn(p) for p in chunk]

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lv-hash")
    try:
        for chunk, results in zip(chunks, pool.map(run, chunks)):
            if on_done:
                on_done(len(chunk))
            yield from zip(chunk, results)
    finally:
        # On an error or Ctrl-C (or the caller closing us) queued batches are
        # dropped and running ones finish before we return: no worker outlives
        # the caller's cleanup.
        pool.shutdown(wait=True, cancel_futures=True)
