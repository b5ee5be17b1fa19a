"""Objects on a local filesystem: ``objects/ab/cdef…``, read-only once written.

Writes go to ``tmp/`` inside the store (same filesystem, so rename is atomic),
become durable, then are renamed into place: a reader never sees a partial
object. A batch is made durable with one ``syncfs`` instead of an fsync per
file — the same guarantee (no object is renamed into place before its bytes are
on disk) at a fraction of the cost for 50,000 small files.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path

from lensvault.errors import ObjectMissing, StorageError
from lensvault.hashing import default_workers
from lensvault.store.base import LinkMode, ObjectStore, is_oid
from lensvault.store.linking import LinkStrategy, storage_error
from lensvault.store.refs import LocalRefs

__all__ = ["LocalObjectStore"]

READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH


def _syncfs(fd: int) -> None:
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.syncfs(fd) == 0:
            return
    except (OSError, AttributeError):
        pass
    os.sync()


class LocalObjectStore(LocalRefs, ObjectStore):
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).absolute()
        self.url = str(self.root)
        self._tmp = self.root / "tmp"
        self._reflink: bool | None = None

    # -- layout: the only two places that know it ------------------------------
    def oid_to_path(self, oid: str) -> Path:
        return self.root / oid[:2] / oid[2:]

    def path_to_oid(self, path: Path) -> str:
        return path.parent.name + path.name

    # -- set-up ------------------------------------------------------------------
    def create(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self._tmp.mkdir(exist_ok=True)
            (self.root / "vaults").mkdir(exist_ok=True)
            (self.root / "pins").mkdir(exist_ok=True)
            for i in range(256):
                (self.root / f"{i:02x}").mkdir(exist_ok=True)
        except OSError as e:
            raise storage_error(e, str(self.root)) from e

    def exists(self) -> bool:
        return self._tmp.is_dir()

    def register_vault(self, vault_id: str, vault_path: Path) -> None:
        """Record that a vault uses this store, so gc in any vault sees every user."""
        p = self.root / "vaults" / f"{vault_id}.json"
        p.write_text(json.dumps({"vault_id": vault_id, "path": str(vault_path)}))

    def registered_vaults(self) -> list[dict]:
        out = []
        d = self.root / "vaults"
        if d.is_dir():
            for p in sorted(d.glob("*.json")):
                try:
                    out.append(json.loads(p.read_text()))
                except (OSError, ValueError):
                    continue
        return out

    # -- pins: objects a writer relies on before its commit ----------------------------
    def pin(self, oids) -> None:
        """Record that an uncommitted write relies on these objects (new or deduplicated).

        gc keeps pinned objects for its grace period. Without this, a snapshot that
        deduplicates against an old unreferenced object could lose it to a gc running
        between the snapshot's ingest and its commit. One small file per batch; the
        objects' own timestamps are not touched (hardlinked objects share their inode
        with the user's files).
        """
        oids = list(oids)
        if not oids:
            return
        d = self.root / "pins"
        d.mkdir(exist_ok=True)
        tmp = d / f".{uuid.uuid4().hex}.tmp"
        tmp.write_text("\n".join(oids))
        os.replace(tmp, d / f"{uuid.uuid4().hex}.pin")

    def pinned(self, grace_seconds: float) -> set[str]:
        """Oids pinned within the grace period; older pin files are removed."""
        import time

        out: set[str] = set()
        d = self.root / "pins"
        if not d.is_dir():
            return out
        now = time.time()
        for e in os.scandir(d):
            if not e.name.endswith(".pin"):
                continue
            try:
                if now - e.stat().st_mtime > grace_seconds:
                    os.unlink(e.path)
                    continue
                with open(e.path) as f:
                    out.update(line for line in f.read().split("\n") if line)
            except FileNotFoundError:
                continue
        return out

    # -- reading -------------------------------------------------------------------
    def has(self, oid: str) -> bool:
        return os.path.exists(f"{self.root}/{oid[:2]}/{oid[2:]}")

    def missing(self, oids: list[str]) -> list[str]:
        exists = os.path.exists
        root = str(self.root)
        return [o for o in oids if not exists(f"{root}/{o[:2]}/{o[2:]}")]

    def open(self, oid: str):
        try:
            return open(self.oid_to_path(oid), "rb")
        except FileNotFoundError:
            raise self._missing(oid) from None

    def size(self, oid: str) -> int:
        try:
            return os.stat(self.oid_to_path(oid)).st_size
        except FileNotFoundError:
            raise self._missing(oid) from None

    def iter_oids(self) -> Iterator[str]:
        for shard in sorted(os.scandir(self.root), key=lambda e: e.name):
            if len(shard.name) != 2 or not shard.is_dir():
                continue
            for entry in os.scandir(shard.path):
                oid = shard.name + entry.name
                if is_oid(oid):
                    yield oid

    def check(self, oid: str) -> str:
        path = self.oid_to_path(oid)
        try:
            with open(path, "rb") as f:
                digest = hashlib.file_digest(f, "sha256").hexdigest()
        except FileNotFoundError:
            return "missing"
        return "ok" if digest == oid else "corrupt"

    def _missing(self, oid: str) -> ObjectMissing:
        return ObjectMissing(
            f"object {oid[:12]}… is missing from the store",
            where=str(self.oid_to_path(oid)),
            fix="restore it from a copy of the store, or re-snapshot the source; `lensvault verify` lists all missing objects",
            oid=oid,
        )

    # -- writing -------------------------------------------------------------------
    def _tmp_path(self) -> Path:
        return self._tmp / f"{uuid.uuid4().hex}.tmp"

    def _finish(self, tmp, oid: str) -> None:
        os.chmod(tmp, READ_ONLY)
        # rename over an existing object is harmless: same name, same bytes.
        os.replace(tmp, f"{self.root}/{oid[:2]}/{oid[2:]}")

    def put_bytes(self, data: bytes) -> str:
        oid = hashlib.sha256(data).hexdigest()
        if self.has(oid):
            self.pin([oid])
            return oid
        tmp = self._tmp_path()
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            self._finish(tmp, oid)
            self._fsync_dir(self.oid_to_path(oid).parent)
        except OSError as e:
            _unlink(tmp)
            raise storage_error(e, str(self.root)) from e
        except BaseException:
            _unlink(tmp)
            raise
        return oid

    def ingest_batch(self, link: LinkMode):
        """Store files while they are hashed, from worker processes (see store/staging.py)."""
        from lensvault.store.staging import IngestBatch

        link = LinkMode(link)
        if link is LinkMode.AUTO and not self.supports_reflink():
            link = LinkMode.COPY
        if link not in (LinkMode.HARDLINK, LinkMode.COPY):
            return None  # reflinks: hashed first, then put_files
        return IngestBatch(self, link)

    def supports_reflink(self) -> bool:
        """Whether the store's filesystem can reflink (probed once, in its temp folder)."""
        if self._reflink is None:
            from lensvault.store.linking import reflink

            a, b = f"{self._tmp}/{uuid.uuid4().hex}.probe", f"{self._tmp}/{uuid.uuid4().hex}.probe"
            try:
                with open(a, "wb") as f:
                    f.write(b"probe")
                reflink(a, b)
                self._reflink = True
            except OSError:
                self._reflink = False
            finally:
                _unlink(a)
                _unlink(b)
        return self._reflink

    def put_files(self, items, link, *, on_done=None) -> None:
        link = LinkMode(link)
        if link is LinkMode.SYMLINK:
            # A store object that points back into the user's folder would not
            # be content-addressed at all; ingest copies instead.
            link = LinkMode.COPY
        todo: dict[str, str] = {}
        for src, oid in items:
            if oid not in todo:
                todo[oid] = src
        self.pin(todo)
        if link is LinkMode.HARDLINK:
            # Linking onto an existing object fails with EEXIST, which _put_hardlinks
            # ignores: no need to stat every object first.
            pending = [(src, oid) for oid, src in todo.items()]
        else:
            pending = [(src, oid) for oid, src in todo.items() if not self.has(oid)]
        skipped = len(items) - len(pending)
        if on_done and skipped:
            on_done(skipped)
        if not pending:
            return
        strategy = LinkStrategy(link)
        if link is LinkMode.HARDLINK:
            self._put_hardlinks(pending, strategy, on_done)
        else:
            self._put_copies(pending, strategy, on_done)

    def _put_hardlinks(self, pending, strategy, on_done):
        # A hardlink is a directory entry, complete the moment it exists: no temp
        # file needed. Only the directory entries must reach the disk, so the
        # touched shard folders are fsynced — not the whole filesystem, whose
        # dirty pages (often the very dataset just written) are not ours to flush.
        root = str(self.root)
        shards = set()
        try:
            for src, oid in pending:
                dst = f"{root}/{oid[:2]}/{oid[2:]}"
                try:
                    strategy.apply(src, dst)
                except FileExistsError:
                    pass
                os.chmod(dst, READ_ONLY)
                shards.add(oid[:2])
                if on_done:
                    on_done(1)
            for shard in shards:
                self._fsync_dir(self.root / shard)
        except OSError as e:
            raise storage_error(e, str(self.root)) from e

    def _put_copies(self, pending, strategy, on_done):
        staged: list[tuple[Path, str]] = []

        tmpdir = str(self._tmp)

        def stage(item):
            src, oid = item
            tmp = f"{tmpdir}/{uuid.uuid4().hex}.tmp"
            staged.append((tmp, oid))  # list.append is atomic under the GIL
            strategy.apply(src, tmp)
            if on_done:
                on_done(1)

        try:
            _parallel(stage, pending)
            self._sync()
            for tmp, oid in staged:
                self._finish(tmp, oid)
            self._sync()
        except OSError as e:
            for tmp, _ in staged:
                _unlink(tmp)
            raise storage_error(e, str(self.root)) from e
        except BaseException:
            for tmp, _ in staged:
                _unlink(tmp)
            raise

    def _sync(self) -> None:
        fd = os.open(self.root, os.O_RDONLY)
        try:
            _syncfs(fd)
        finally:
            os.close(fd)

    @staticmethod
    def _fsync_dir(path: Path) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def materialize(self, items, link, *, on_done=None) -> None:
        strategy = LinkStrategy(link)

        def one(item):
            oid, dest = item
            used = _place(self, strategy, oid, dest)
            if used in (LinkMode.COPY, LinkMode.REFLINK):
                # copies are the user's to edit; only shared bytes stay read-only
                os.chmod(dest, 0o644)
            if on_done:
                on_done(1)

        try:
            if strategy.mode in (LinkMode.HARDLINK, LinkMode.SYMLINK):
                # Metadata only: threads would add nothing but GIL hand-offs; forked
                # workers (for big jobs) halve the Python around each link.
                from lensvault.parallel import CHUNK, map_chunks

                for _ in map_chunks(partial(_link_part, self, strategy), _spread_by_folder(items, CHUNK),
                                    on_done=on_done):
                    pass
            else:
                _parallel(one, items)
        except OSError as e:
            if isinstance(e, StorageError):
                raise
            raise storage_error(e, str(items[0][1]) if items else str(self.root)) from e

    def delete(self, oid: str) -> None:
        try:
            os.unlink(self.oid_to_path(oid))
        except FileNotFoundError:
            pass

    def clean_tmp(self, older_than_s: float = 3600) -> int:
        """Remove temp files left by a killed writer (a live writer's are younger)."""
        import time

        n = 0
        now = time.time()
        for e in os.scandir(self._tmp):
            try:
                if now - e.stat().st_mtime > older_than_s:
                    os.unlink(e.path)
                    n += 1
            except OSError:
                continue
        return n


def _spread_by_folder(items: list, chunk: int) -> list:
    """``items`` reordered so that consecutive chunks go to different destination folders.

    Two workers linking into one folder queue on its lock (ext4 serializes entry
    inserts per directory): on 50,000 files in 50 folders, two workers in path
    order were barely faster than one (0.94 s vs 1.0 s); dealt out folder by folder, 0.73 s.
    """
    groups: dict[str, list] = {}
    for item in items:
        groups.setdefault(str(item[1]).rpartition("/")[0], []).append(item)
    if len(groups) < 2:
        return items
    queues = [g for g in groups.values()]
    out: list = []
    while queues:
        for q in queues:
            out.extend(q[:chunk])
            del q[:chunk]
        queues = [q for q in queues if q]
    return out


def _link_part(store: LocalObjectStore, strategy: LinkStrategy, part: list) -> list:
    """In a worker (or in-process for small jobs): hard- or symlink objects to their destinations."""
    for oid, dest in part:
        _place(store, strategy, oid, dest)
    return [None] * len(part)  # the mapper's contract: one result per item


def _place(store: LocalObjectStore, strategy: LinkStrategy, oid: str, dest) -> LinkMode:
    """Put object ``oid`` at ``dest`` by ``strategy``; ObjectMissing if the store lacks it."""
    src = f"{store.root}/{oid[:2]}/{oid[2:]}"
    if strategy.mode is LinkMode.SYMLINK and not os.path.exists(src):
        raise store._missing(oid)  # a symlink to nothing would be made without complaint
    try:
        return strategy.apply(src, str(dest))
    except FileNotFoundError:
        if not os.path.exists(src):
            raise store._missing(oid) from None
        raise


def _parallel(fn, items, batch: int = 128) -> None:
    """Apply fn to every item on a thread pool, a batch per task (pools ignore map's chunksize)."""
    if len(items) < 32:
        for item in items:
            fn(item)
        return

    def run(chunk):
        for item in chunk:
            fn(item)

    from concurrent.futures import ThreadPoolExecutor  # not at import: it pulls in logging (~12 ms of CLI start)

    from lensvault.parallel import sigint_held

    pool = ThreadPoolExecutor(default_workers(), thread_name_prefix="lv-io")
    try:
        # Ctrl-C while submit starts a thread would leave one the pool cannot wait for
        with sigint_held():
            futures = [pool.submit(run, items[i : i + batch]) for i in range(0, len(items), batch)]
        for future in futures:
            future.result()
    finally:
        # Queued batches are dropped and running ones finish before the caller cleans up,
        # even if Ctrl-C is pressed again meanwhile.
        with sigint_held():
            pool.shutdown(wait=True, cancel_futures=True)


def _unlink(p) -> None:
    try:
        os.unlink(p)
    except OSError as e:
        if e.errno != errno.ENOENT:
            pass


