"""Store files while they are being hashed: hardlink- and copy-mode ingest for a LocalObjectStore.

Hashing first and storing afterwards reads every byte twice (copy mode) or walks
every file twice (hardlink mode). An ``IngestBatch`` is handed to the workers
that hash (``lensvault.parallel``: it is pickled, so it holds only paths and
names) and stores each file right after its read:

- hardlink: the file is linked into place and made read-only. A link is complete
  the moment it exists; only the shard directories must reach the disk, which
  ``commit`` does once for the whole batch.
- copy: a small file's bytes, already in memory for hashing, are written to a
  temp file named after the batch (a large one is streamed while it is hashed).
  ``commit`` makes them durable with one ``syncfs`` and renames them into place,
  so no object ever appears before its bytes are on disk.

Every temp file starts with the batch's token, so ``abort`` finds the ones a
worker wrote even if the worker never reported them.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import uuid
from contextlib import contextmanager

from lensvault.store.base import LinkMode
from lensvault.store.linking import LinkStrategy, storage_error

__all__ = ["IngestBatch"]

READ_ONLY = 0o444
_COUNTER = itertools.count()


class IngestBatch:
    def __init__(self, store, link: LinkMode):
        if link not in (LinkMode.HARDLINK, LinkMode.COPY):
            raise ValueError(f"an ingest batch links or copies, not {link.value}")
        self.store = store
        self.link = link
        self.root = str(store.root)
        self.tmp = str(store._tmp)
        self.token = uuid.uuid4().hex[:16]

    # -- in a worker ------------------------------------------------------------------
    def _tmp_name(self) -> str:
        # The batch is unpickled afresh for every part a worker runs, so the
        # counter is the process's, and the pid keeps workers apart.
        return f"{self.tmp}/{self.token}-{os.getpid()}-{next(_COUNTER)}.tmp"

    def pin(self, oids) -> None:
        self.store.pin(oids)

    def link_in(self, path: str, oid: str) -> None:
        """Hardlink mode: make ``path`` the object ``oid`` (already there: nothing to do)."""
        dst = f"{self.root}/{oid[:2]}/{oid[2:]}"
        try:
            os.link(path, dst)
        except FileExistsError:
            return
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
    def _temp_file(self):
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

    def _write_all(self, fd: int, data) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(fd, view):]
        except OSError as e:
            raise storage_error(e, self.root) from e

    def stage_bytes(self, oid: str, data) -> str | None:
        """Copy mode: write bytes already hashed to a temp file unless the object exists."""
        if os.path.exists(f"{self.root}/{oid[:2]}/{oid[2:]}"):
            return None
        with self._temp_file() as (tmp, fd):
            self._write_all(fd, data)
        return tmp

    def stage_stream(self, f, chunk: int = 1 << 20):
        """Copy mode, large file: stream ``f`` to a temp file while hashing it.

        Returns (oid, size, head, tmp); tmp is None (and removed) if the object exists.
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
        oid = h.hexdigest()
        if os.path.exists(f"{self.root}/{oid[:2]}/{oid[2:]}"):
            _unlink(tmp)
            tmp = None
        return oid, size, head, tmp

    # -- in the caller ------------------------------------------------------------------
    def commit(self, oids, staged: list[tuple[str, str]]) -> None:
        """Make the batch durable and visible: ``staged`` is (temp path, oid) from the workers."""
        store = self.store
        try:
            if self.link is LinkMode.HARDLINK:
                for shard in sorted({o[:2] for o in oids}):
                    store._fsync_dir(store.root / shard)
                return
            store.pin(set(oids))
            if not staged:
                return
            store._sync()
            for tmp, oid in staged:
                # rename over an existing object is harmless: same name, same bytes
                os.replace(tmp, f"{self.root}/{oid[:2]}/{oid[2:]}")
            store._sync()
        except OSError as e:
            self.abort()
            raise storage_error(e, self.root) from e

    def abort(self) -> None:
        """Remove every temp file of this batch (call after the workers have stopped)."""
        prefix = f"{self.token}-"
        try:
            entries = list(os.scandir(self.tmp))
        except OSError:
            return
        for e in entries:
            if e.name.startswith(prefix):
                _unlink(e.path)


def _unlink(p) -> None:
    try:
        os.unlink(p)
    except OSError:
        pass
