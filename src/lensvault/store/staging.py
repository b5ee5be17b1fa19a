"""Hash files and stage new content in one read: copy-mode ingest for a LocalObjectStore."""

from __future__ import annotations

import hashlib
import uuid

from lensvault.store.linking import storage_error
from lensvault.store.local import _unlink

__all__ = ["Stager"]


class _Aborted(Exception):
    """The batch was abandoned (an error or Ctrl-C elsewhere): stop staging."""


class _WriteFailed(Exception):
    """Marks an error writing the staged copy, as opposed to reading the source."""


class Stager:
    """Hash files and stage new content in one read (copy-mode ingest).

    Hashing and then copying reads every byte twice; here a small file is read
    once into memory, hashed, and written to the store's temp folder only if its
    object is missing; a large one is streamed to a temp file while it is
    hashed. ``commit`` makes the batch durable and renames it into place;
    leaving the ``with`` block on an error removes every staged file.
    """

    def __init__(self, store):
        self.store = store
        self.staged: list[tuple[str, str]] = []
        self.seen: list[str] = []  # every oid hashed, staged or already stored: all get pinned
        self.aborted = False
        self._tmp = str(store._tmp)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.abort()

    def hash_file(self, path: str):
        try:
            return self._hash_file(path)
        except _WriteFailed as e:
            raise storage_error(e.__cause__, str(self.store.root)) from e.__cause__

    def _hash_file(self, path: str):
        from lensvault.hashing import CHUNK, SMALL_FILE, FileHash

        with open(path, "rb", buffering=0) as f:
            data = f.read(SMALL_FILE)
            if self.aborted:
                raise _Aborted()
            if len(data) < SMALL_FILE:
                oid = hashlib.sha256(data).hexdigest()
                self.seen.append(oid)
                if not self.store.has(oid):
                    tmp = f"{self._tmp}/{uuid.uuid4().hex}.tmp"
                    self.staged.append((tmp, oid))  # before writing: abort() must find it
                    try:
                        with open(tmp, "wb") as out:
                            out.write(data)
                    except OSError as e:
                        raise _WriteFailed() from e
                return FileHash(oid, len(data), data)
            tmp = f"{self._tmp}/{uuid.uuid4().hex}.tmp"
            self.staged.append((tmp, ""))
            h = hashlib.sha256(data)
            size = len(data)
            head = data[: 64 * 1024]
            try:
                out = open(tmp, "wb")
                out.write(data)
            except OSError as e:
                raise _WriteFailed() from e
            with out:
                while chunk := f.read(CHUNK):
                    h.update(chunk)
                    try:
                        out.write(chunk)
                    except OSError as e:
                        raise _WriteFailed() from e
                    size += len(chunk)
            oid = h.hexdigest()
            self.seen.append(oid)
            self.staged.append((tmp, oid))
            return FileHash(oid, size, head)

    def commit(self) -> None:
        store = self.store
        done = {}
        for tmp, oid in self.staged:
            if oid:
                done[tmp] = oid
        store.pin(set(self.seen))
        try:
            store._sync()
            for tmp, oid in done.items():
                if store.has(oid):
                    _unlink(tmp)
                else:
                    store._finish(tmp, oid)
            store._sync()
        except OSError as e:
            self.abort()
            raise storage_error(e, str(store.root)) from e
        self.staged = []

    def abort(self) -> None:
        self.aborted = True  # workers still running stop before writing anything new
        for tmp, _ in self.staged:
            _unlink(tmp)
        self.staged = []
