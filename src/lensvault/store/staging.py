"""Store files while they are being hashed: hardlink- and copy-mode ingest into a store's local files.

Hashing first and storing afterwards reads every byte twice (copy mode) or walks
every file twice (hardlink mode). An ``IngestBatch`` (made by
``local_links.ingest_batch`` for a store with local files) is handed to the workers
that hash (``lensvault.parallel``: it is pickled, so it holds the store's
``LocalFiles`` — paths — and names, never the store) and stores each file right
after its read:

- hardlink: the file is linked into place and made read-only. A link is complete
  the moment it exists; only the shard directories must reach the disk, which
  ``commit`` does once for the whole batch.
- copy: a small file's bytes, already in memory for hashing, are written to a
  temp file named after the batch (a large one is streamed while it is hashed).
  ``commit`` makes them durable with one ``syncfs`` and renames them into place,
  so no object ever appears before its bytes are on disk.

Every temp file starts with the writer's owner token (``store/owner.py``: gc removes
the files of a writer that is gone) and the batch's token, so ``abort`` finds the
ones a worker wrote even if the worker never reported them.

An object that exists with another size than the file being stored (truncated,
emptied) is replaced, so storing a file again repairs it.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, BinaryIO

from lensvault.store.base import LinkMode
from lensvault.store.linking import LinkStrategy, storage_error
from lensvault.store.local_files import READ_ONLY, LocalFiles, write_all
from lensvault.store.owner import current as current_owner

if TYPE_CHECKING:
    from lensvault.store.base import ObjectKey

Buffer = bytes | bytearray | memoryview
# What a copy-mode worker staged: (temp path, the new object's key for store/verified.py).
Staged = tuple[str, "ObjectKey"]

__all__ = ["IngestBatch"]

_COUNTER = itertools.count()


class IngestBatch:
    def __init__(self, files: LocalFiles, link: LinkMode):
        if link not in (LinkMode.HARDLINK, LinkMode.COPY):
            raise ValueError(f"an ingest batch links or copies, not {link.value}")
        self.files = files
        self.link = link
        self.root = files.root
        self.tmp = files.tmp
        # The process that commits the batch owns its pins and temp files, not the workers.
        self.owner = current_owner()
        self.token = uuid.uuid4().hex[:16]

    # -- in a worker ------------------------------------------------------------------
    def _tmp_name(self) -> str:
        # The batch is unpickled afresh for every part a worker runs, so the
        # counter is the process's, and the pid keeps workers apart.
        return f"{self.tmp}/{self.owner}-{self.token}-{os.getpid()}-{next(_COUNTER)}.tmp"

    def pin(self, oids: Iterable[str]) -> None:
        """Pin for gc (see LocalObjectStore.pin), appending to one pin file per worker and batch:
        a pin file per part made a 50,000-file snapshot write (and later remove) ~200 files.
        gc reads pin files whole; a line being appended meanwhile is at worst a partial oid,
        which names no object."""
        name = f"{self.owner}-{self.token}-{os.getpid()}"
        try:
            self.files.append_pins(name, oids)
        except OSError as e:
            raise storage_error(e, f"{self.files.pins}/{name}.pin") from e

    def link_in(self, path: str, oid: str, size: int | None = None) -> None:
        """Hardlink mode: make ``path`` the object ``oid`` (already there and intact: nothing to do).

        ``size``: the file's size when it was hashed (None: its size now)."""
        dst = self.files.path(oid)
        try:
            os.link(path, dst)
        except FileExistsError:
            try:
                if size is None:
                    size = os.stat(path).st_size
            except OSError as e:
                raise storage_error(e, path) from e
            if _size_is(dst, size):
                return
            # A damaged object (truncated, emptied): this file, just hashed, replaces it.
            tmp = self._tmp_name()
            try:
                os.link(path, tmp)
                os.replace(tmp, dst)
            except OSError as e:
                _unlink(tmp)
                raise storage_error(e, self.root) from e
        except OSError:
            # Not the common case: let the strategy name the problem (cross-device, ...).
            try:
                LinkStrategy(LinkMode.HARDLINK).apply(path, dst)
            except FileExistsError:
                return
            except OSError as e:
                if hasattr(e, "what"):
                    raise
                raise storage_error(e, self.root) from e
        try:
            os.chmod(dst, READ_ONLY)
        except OSError as e:
            raise storage_error(e, self.root) from e

    @contextmanager
    def _temp_file(self) -> Iterator[tuple[str, int]]:
        """(path, fd) of a new read-only temp file; closed on exit, removed if the block fails."""
        tmp = self._tmp_name()
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, READ_ONLY)
        except OSError as e:
            raise storage_error(e, self.root) from e
        try:
            try:
                yield tmp, fd
            finally:
                os.close(fd)
        except BaseException:
            _unlink(tmp)
            raise

    def _write_all(self, fd: int, data: Buffer) -> None:
        try:
            write_all(fd, data)
        except OSError as e:
            raise storage_error(e, self.root) from e

    def stage_bytes(self, oid: str, data: Buffer) -> Staged | None:
        """Copy mode: write bytes already hashed to a temp file unless the object exists intact.

        Returns (temp path, its (inode, size, mtime_ns)): the object's key once renamed into
        place, verified by construction (store/verified.py)."""
        if _size_is(self.files.path(oid), len(data)):
            return None
        with self._temp_file() as (tmp, fd):
            self._write_all(fd, data)
            st = os.fstat(fd)
        return tmp, (st.st_ino, st.st_size, st.st_mtime_ns)

    def stage_stream(self, f: BinaryIO, chunk: int = 1 << 20) -> tuple[str, int, bytes, Staged | None]:
        """Copy mode, large file: stream ``f`` to a temp file while hashing it.

        Returns (oid, size, head, staged); staged is (temp path, its key) as from
        ``stage_bytes``, or None (and the temp file removed) if the object exists intact.
        """
        h = hashlib.sha256()
        size = 0
        head = b""
        with self._temp_file() as (tmp, fd):
            while data := f.read(chunk):  # a read error is the source's: it propagates
                if not head:
                    head = bytes(data[: 64 * 1024])
                h.update(data)
                self._write_all(fd, data)
                size += len(data)
            st = os.fstat(fd)
        oid = h.hexdigest()
        if _size_is(self.files.path(oid), size):
            _unlink(tmp)
            return oid, size, head, None
        return oid, size, head, (tmp, (st.st_ino, st.st_size, st.st_mtime_ns))

    # -- in the caller ------------------------------------------------------------------
    def commit(self, oids: Iterable[str], staged: list[tuple[str, str]]) -> None:
        """Make the batch durable and visible: ``staged`` is (temp path, oid) from the workers."""
        files = self.files
        try:
            if self.link is LinkMode.HARDLINK:
                files.fsync_shards(oids)
                return
            self.pin(set(oids))
            if not staged:
                return
            files.sync()
            for tmp, oid in staged:
                # rename over an existing object is harmless: same name, same bytes
                os.replace(tmp, files.path(oid))
            files.sync()
        except OSError as e:
            self.abort()
            raise storage_error(e, self.root) from e

    def abort(self) -> None:
        """Remove every temp file of this batch (call after the workers have stopped)."""
        prefix = f"{self.owner}-{self.token}-"
        try:
            entries = list(os.scandir(self.tmp))
        except OSError:
            return
        for e in entries:
            if e.name.startswith(prefix):
                _unlink(e.path)


def _size_is(path: str, size: int) -> bool:
    try:
        return os.stat(path).st_size == size
    except FileNotFoundError:
        return False


def _unlink(p: str) -> None:
    try:
        os.unlink(p)
    except OSError:
        pass
