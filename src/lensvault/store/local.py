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

from contextlib import contextmanager

# (Module-level imports: these functions also run in forked workers, which must import nothing.)
from lensvault.errors import IntegrityError, ObjectMissing, ObjectsVanished, StorageError
from lensvault.hashing import CHUNK, default_workers, read_small
from lensvault.store.base import LinkMode, ObjectStore, is_oid
from lensvault.store.linking import LinkStrategy, storage_error
from lensvault.store.owner import alive as owner_alive
from lensvault.store.owner import current as current_owner
from lensvault.store.verified import object_key
from lensvault.store.refs import LocalRefs

__all__ = ["LocalObjectStore"]

READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
# From this many oids, ``missing`` lists the shard folders instead of a stat per object.
_LIST_SHARDS_FROM = 2048


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
        tmp = p.with_name(f".{current_owner()}-{p.name}.tmp")  # whole or absent: gc refuses one it cannot read
        tmp.write_text(json.dumps({"vault_id": vault_id, "path": str(vault_path)}))
        os.replace(tmp, p)

    def registered_vaults(self) -> list[dict]:
        out = []
        d = self.root / "vaults"
        if d.is_dir():
            for p in sorted(d.glob("*.json")):
                try:
                    info = json.loads(p.read_text())
                except FileNotFoundError:
                    continue
                except (OSError, ValueError):
                    info = None
                if not isinstance(info, dict) or not isinstance(info.get("path"), str):
                    # Named after its vault; which folder it is in is lost (``unreadable``: the file).
                    info = {"vault_id": p.stem, "path": None, "unreadable": str(p)}
                out.append(info)
        return out

    # -- pins: objects a writer relies on before its commit ----------------------------
    def pin(self, oids, *, owner: str | None = None) -> None:
        """Record that an uncommitted write relies on these objects (new or deduplicated).

        gc never deletes an object pinned by a live writer, whatever its grace period;
        a dead writer's pins are removed. Without this, a snapshot that deduplicates
        against an old unreferenced object could lose it to a gc running between the
        snapshot's ingest and its commit. One small file per batch, named after its
        writer (``owner``: the token of the process that will commit, see store/owner.py);
        the objects' own timestamps are not touched (hardlinked objects share their inode
        with the user's files). Pins are an economy, not the guarantee: the commit checks
        its objects under the gc lock (``committing``).
        """
        oids = list(oids)
        if not oids:
            return
        owner = owner or current_owner()
        d = self.root / "pins"
        name = f"{owner}-{uuid.uuid4().hex}"
        tmp = d / f".{name}.tmp"
        try:
            d.mkdir(exist_ok=True)
            tmp.write_text("\n".join(oids))
            os.replace(tmp, d / f"{name}.pin")
        except OSError as e:
            _unlink(tmp)
            raise storage_error(e, str(d)) from e

    def pinned(self, grace_seconds: float) -> set[str]:
        """Oids pinned by live writers, or (writers another host runs) within the grace period.

        The pins of writers that are gone are removed.
        """
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
                live = owner_alive(e.name.partition("-")[0])
                if live is False or (live is None and now - e.stat().st_mtime > grace_seconds):
                    os.unlink(e.path)
                    continue
                out.update(_pin_lines(e.path))
            except FileNotFoundError:
                continue
            except OSError as err:
                if err.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
                    raise storage_error(err, e.path) from err
                # a read-only store: the pins cannot be cleared, but they still count
                out.update(_pin_lines(e.path))
        return out

    def release_pins(self) -> None:
        """Remove this process's pins (its writes have committed or failed)."""
        prefix = f"{current_owner()}-"
        try:
            entries = list(os.scandir(self.root / "pins"))
        except OSError:
            return
        for e in entries:
            if e.name.startswith(prefix) and e.name.endswith(".pin"):
                _unlink(e.path)

    # -- the gc lock: a commit and gc's delete phase never overlap -----------------------
    @contextmanager
    def _lock(self, kind: int):
        import fcntl

        path = self.root / "gc.lock"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM) and kind == fcntl.LOCK_SH and path.exists():
                fd = os.open(path, os.O_RDONLY)  # flock needs no write access
            else:
                raise storage_error(e, str(path)) from e
        try:
            from lensvault.parallel import sigint_held

            with sigint_held():  # Ctrl-C while waiting is delivered once the lock is ours (and then released)
                fcntl.flock(fd, kind)
            yield
        finally:
            os.close(fd)  # closing the last descriptor releases the lock

    @contextmanager
    def committing(self, oids=()):
        """Hold gc's delete phase off while a write that needs ``oids`` commits.

        Checks, under the lock, that every object is in the store: gc either ran before
        (and whatever it deleted is found missing here: ObjectsVanished) or runs after
        the commit (and sees the new references). Yields ``check(more_oids)`` for objects
        made inside the block. The caller's pins are released at the end.
        """
        import fcntl

        try:
            with self._lock(fcntl.LOCK_SH):
                self._all_present(oids)
                yield self._all_present
        finally:
            self.release_pins()

    def _all_present(self, oids) -> None:
        gone = self.missing(sorted(set(oids)))
        if gone:
            raise ObjectsVanished(
                f"{len(gone)} object(s) this write needs left the store before it committed "
                f"(first: {gone[0][:12]}…); a gc or another process removed them",
                where=str(self.oid_to_path(gone[0])),
                fix="run the command again (it stores them again); gc never removes what a live writer pinned",
                missing=gone[:100],
            )

    @contextmanager
    def gc_lock(self):
        """Exclusive: no write commits while gc decides what to delete and deletes it."""
        import fcntl

        with self._lock(fcntl.LOCK_EX):
            yield

    # -- reading -------------------------------------------------------------------
    def has(self, oid: str) -> bool:
        return os.path.exists(f"{self.root}/{oid[:2]}/{oid[2:]}")

    def missing(self, oids: list[str]) -> list[str]:
        exists = os.path.exists
        root = str(self.root)
        if len(oids) >= _LIST_SHARDS_FROM:
            # For a big batch, listing the shard folders (names only, ~0.3 µs a name) beats a
            # stat per object (~3 µs) unless the store is much bigger than the batch: one
            # shard's size tells which.
            first = oids[0][:2]
            try:
                names = set(os.listdir(f"{root}/{first}"))
            except FileNotFoundError:
                names = set()
            if len(names) * 256 <= 8 * len(oids):
                present = {first: names}
                out = []
                for o in oids:
                    names = present.get(o[:2])
                    if names is None:
                        try:
                            names = present[o[:2]] = set(os.listdir(f"{root}/{o[:2]}"))
                        except FileNotFoundError:
                            names = present[o[:2]] = set()
                    if o[2:] not in names:
                        out.append(o)
                return out
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

    def absent_or_damaged(self, oids: list[str], sizes: list[int], inodes: list[int] | None = None) -> list[int]:
        """Indexes of the objects missing from the store or not of the given size.

        ``inodes``: the inodes of files the objects were hardlinked from, if so. An object that
        is still that inode is that file, so of its size: listing the shard folders with their
        inode numbers (~0.4 µs an entry) then answers for it without a stat (~3 µs). Used when
        the batch is big next to the store (one shard's size tells).
        """
        root = str(self.root)
        st = os.stat
        ino_of: dict[str, dict] = {}
        if inodes is not None and len(oids) >= _LIST_SHARDS_FROM:
            first = oids[0][:2]
            try:
                ino_of[first] = {e.name: e.inode() for e in os.scandir(f"{root}/{first}")}
            except FileNotFoundError:
                ino_of[first] = {}
            if len(ino_of[first]) * 256 > 8 * len(oids):
                ino_of = {}
                inodes = None
        out = []
        for i, (o, n) in enumerate(zip(oids, sizes)):
            if inodes is not None:
                names = ino_of.get(o[:2])
                if names is None:
                    try:
                        names = ino_of[o[:2]] = {e.name: e.inode() for e in os.scandir(f"{root}/{o[:2]}")}
                    except FileNotFoundError:
                        names = ino_of[o[:2]] = {}
                ino = names.get(o[2:])
                if ino is None:
                    out.append(i)
                    continue
                if ino == inodes[i]:
                    continue
            try:
                if st(f"{root}/{o[:2]}/{o[2:]}").st_size != n:
                    out.append(i)
            except FileNotFoundError:
                out.append(i)
        return out

    def shares_inode(self, oid: str, ino: int) -> bool:
        """Whether object ``oid`` is the file with inode ``ino`` (hardlinked into the store)."""
        try:
            return os.stat(self.oid_to_path(oid)).st_ino == ino
        except OSError:
            return False

    def drop_damaged(self, oid: str, ino: int) -> bool:
        """Remove object ``oid`` if it is still the inode ``ino`` whose bytes are known not to be ``oid``'s."""
        if not self.shares_inode(oid, ino):
            return False
        try:
            os.unlink(self.oid_to_path(oid))
        except FileNotFoundError:
            return False
        except OSError as e:
            raise storage_error(e, str(self.oid_to_path(oid))) from e
        return True

    def _intact(self, oid: str, size: int) -> bool:
        """The object exists with the expected size (a truncated or emptied one is written again)."""
        try:
            return os.stat(f"{self.root}/{oid[:2]}/{oid[2:]}").st_size == size
        except FileNotFoundError:
            return False

    def iter_oids(self) -> Iterator[str]:
        for shard in sorted(os.scandir(self.root), key=lambda e: e.name):
            if len(shard.name) != 2 or not shard.is_dir():
                continue
            for entry in os.scandir(shard.path):
                oid = shard.name + entry.name
                if is_oid(oid):
                    yield oid

    def check(self, oid: str) -> str:
        return self.check_keyed(oid)[0]

    def check_keyed(self, oid: str) -> tuple[str, tuple | None]:
        """('ok' | 'missing' | 'corrupt', the object's (inode, size, mtime_ns) if it hashed right and
        kept that key while it was read — what ``store.verified`` records)."""
        path = self.oid_to_path(oid)
        try:
            with open(path, "rb") as f:
                before = object_key(os.fstat(f.fileno()))
                digest = hashlib.file_digest(f, "sha256").hexdigest()
                after = object_key(os.fstat(f.fileno()))
        except FileNotFoundError:
            return "missing", None
        except IsADirectoryError:
            return "corrupt", None  # something else sits where the object should be
        except PermissionError as e:
            raise StorageError("an object cannot be read (permission denied)", where=str(path),
                               fix="give read permission to the store's objects (chmod -R a+r on the store folder)") from e
        if digest != oid:
            return "corrupt", None
        return "ok", (before if before == after else None)

    def _missing(self, oid: str) -> ObjectMissing:
        return ObjectMissing(
            f"object {oid[:12]}… is missing from the store",
            where=str(self.oid_to_path(oid)),
            fix="restore it from a copy of the store, or re-snapshot the source; `lensvault verify` lists all missing objects",
            oid=oid,
        )

    # -- writing -------------------------------------------------------------------
    def _tmp_path(self) -> Path:
        # Named after the writer, so gc removes it once the writer is gone (and never before).
        return self._tmp / f"{current_owner()}-{uuid.uuid4().hex}.tmp"

    def _finish(self, tmp, oid: str) -> None:
        os.chmod(tmp, READ_ONLY)
        # rename over an existing object is harmless: same name, same bytes.
        try:
            os.replace(tmp, f"{self.root}/{oid[:2]}/{oid[2:]}")
        except IsADirectoryError:  # something else sat where the object belongs: set it aside
            self.quarantine(oid)
            os.replace(tmp, f"{self.root}/{oid[:2]}/{oid[2:]}")

    def put_bytes(self, data: bytes) -> str:
        oid = hashlib.sha256(data).hexdigest()
        # Pinned before it is looked at or renamed into place: a gc that lists it after
        # this sees the pin (gc reads the pins after listing the objects).
        self.pin([oid])
        if self._intact(oid, len(data)):
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

    def restore(self, oid: str, src: str | os.PathLike) -> bool:
        """Store ``src``'s bytes as object ``oid`` if they hash to it, replacing a missing or damaged
        object (a damaged one is never kept); False, and nothing changed, if they do not.

        The repair primitive: the bytes are hashed while they are copied to a temp file,
        which is made durable and renamed over the object only if the hash matches.
        """
        self.pin([oid])
        tmp = self._tmp_path()
        try:
            with open(src, "rb") as f, open(tmp, "wb") as out:
                h = hashlib.sha256()
                while chunk := f.read(CHUNK):
                    h.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if h.hexdigest() != oid:
                _unlink(tmp)
                return False
            self._finish(tmp, oid)
            self._fsync_dir(self.oid_to_path(oid).parent)
        except FileNotFoundError:
            _unlink(tmp)
            return False
        except OSError as e:
            _unlink(tmp)
            raise storage_error(e, str(self.root)) from e
        except BaseException:
            _unlink(tmp)
            raise
        return True

    def restore_bytes(self, oid: str, data: bytes) -> bool:
        """``restore`` from bytes in memory."""
        if hashlib.sha256(data).hexdigest() != oid:
            return False
        self.pin([oid])
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
        return True

    def quarantine(self, oid: str) -> str | None:
        """Move a corrupt object aside (``quarantine/OID``): its bytes are kept for inspection, and
        the store no longer serves them (the object is missing until good bytes are restored)."""
        d = self.root / "quarantine"
        try:
            d.mkdir(exist_ok=True)
            os.replace(self.oid_to_path(oid), d / oid)
        except FileNotFoundError:
            return None
        except OSError as e:
            raise storage_error(e, str(self.oid_to_path(oid))) from e
        return str(d / oid)

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

            a, b = (f"{self._tmp}/{current_owner()}-{uuid.uuid4().hex}.probe" for _ in range(2))
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
            # checks then: no need to stat every object first.
            pending = [(src, oid) for oid, src in todo.items()]
        else:
            pending = [(src, oid) for oid, src in todo.items() if not self._intact(oid, _size_of(src))]
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
                    if not self._intact(oid, _size_of(src)):
                        tmp = self._tmp_path()  # a damaged object: the file replaces it
                        strategy.apply(src, str(tmp))
                        os.replace(tmp, dst)
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

        owner = current_owner()

        def stage(item):
            src, oid = item
            tmp = f"{tmpdir}/{owner}-{uuid.uuid4().hex}.tmp"
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

    def materialize(self, items, link, *, on_done=None) -> set:
        """Write objects to destinations; the modes used (a copy was hashed as it was made;
        linked or reflinked objects are the caller's to check, see store/verified.py)."""
        strategy = LinkStrategy(link)
        used: set = set()

        def one(item):
            oid, dest = item
            mode = _place(self, strategy, oid, dest)
            if mode is LinkMode.REFLINK:
                # copies are the user's to edit; only shared bytes stay read-only
                os.chmod(dest, 0o644)
            used.add(mode)
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
                used.add(strategy.mode)
            else:
                _parallel(one, items)
        except OSError as e:
            if isinstance(e, StorageError):
                raise
            raise storage_error(e, str(items[0][1]) if items else str(self.root)) from e
        return used

    def delete(self, oid: str) -> None:
        try:
            os.unlink(self.oid_to_path(oid))
        except FileNotFoundError:
            pass
        except OSError as e:
            raise storage_error(e, str(self.oid_to_path(oid))) from e

    def leftovers(self, grace_seconds: float) -> list:
        """Temp files of writers that are gone (see store/leftovers.py), for gc to remove."""
        from lensvault.store.leftovers import scan_files

        return (scan_files(self._tmp, "store temp file", grace_seconds)
                + scan_files(self.root / "pins", "pin temp file", grace_seconds, match=lambda n: n.endswith(".tmp"))
                + scan_files(self.root / "vaults", "vault record temp file", grace_seconds,
                             match=lambda n: n.endswith(".tmp")))


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
    """Put object ``oid`` at ``dest`` by ``strategy``; ObjectMissing if the store lacks it.

    A copy hashes what it copies (``copy_checked``): corrupt bytes never leave the store
    silently. Links share the object's bytes; the caller checks those (store/verified.py).
    """
    src = f"{store.root}/{oid[:2]}/{oid[2:]}"
    mode = strategy.effective
    if mode is LinkMode.COPY:
        copy_checked(store, oid, src, str(dest))
        return mode
    if mode is LinkMode.SYMLINK and not os.path.exists(src):
        raise store._missing(oid)  # a symlink to nothing would be made without complaint
    try:
        used = strategy.apply(src, str(dest))
    except FileNotFoundError:
        if not os.path.exists(src):
            raise store._missing(oid) from None
        raise
    if used is LinkMode.COPY:  # AUTO found no reflinks: do this one again, checked
        os.unlink(dest)
        copy_checked(store, oid, src, str(dest))
    return used


def copy_checked(store: LocalObjectStore, oid: str, src: str, dest: str) -> None:
    """Copy an object to a new file, hashing what is read; IntegrityError if it is not ``oid``'s bytes.

    One read of a small object into this thread's reused buffer, then one write: the hash
    costs a fraction of the copy (sha256 runs at ~1.5 GB/s and releases the GIL).
    """
    try:
        fd = os.open(src, os.O_RDONLY)
    except FileNotFoundError:
        raise store._missing(oid) from None
    try:
        out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            h = hashlib.sha256()
            data = read_small(fd)
            if data is not None:
                h.update(data)
                _write_all(out, data)
            else:
                os.lseek(fd, 0, os.SEEK_SET)
                while chunk := os.read(fd, CHUNK):
                    h.update(chunk)
                    _write_all(out, chunk)
            os.fchmod(out, 0o644)  # copies are the user's to edit, whatever the umask
        finally:
            os.close(out)
    finally:
        os.close(fd)
    if h.hexdigest() != oid:
        raise IntegrityError(
            f"object {oid[:12]}… is corrupt: its bytes no longer hash to its name",
            where=src,
            fix="run `lensvault verify --repair` (give a folder that holds the original file with --from DIR)",
            oid=oid, corrupt=[oid],
        )


def _write_all(fd: int, data) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


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


def _pin_lines(path: str) -> list[str]:
    # Bytes, not text: a damaged pin file must not stop gc (a garbage line names no object).
    with open(path, "rb") as f:
        return [line.decode("ascii", "replace") for line in f.read().split(b"\n") if line]


def _size_of(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return -1  # the copy will report what is wrong with the source


def _unlink(p) -> None:
    try:
        os.unlink(p)
    except OSError as e:
        if e.errno != errno.ENOENT:
            pass


