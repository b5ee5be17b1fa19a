"""Objects on a local filesystem: ``objects/ab/cdef…``, read-only once written.

The layout and the write protocol (temp file, durable, renamed into place) are
``LocalFiles``'s (store/local_files.py); this is the ``ObjectStore`` over it, plus
what only a shared folder needs: pin files named after their writers, an ``flock``
between gc and committing writers, and the vaults registered with the store.
Linking files in and out is store/local_links.py's.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

# (Module-level imports: these functions also run in forked workers, which must import nothing.)
from lensvault.errors import ObjectsVanished, StorageError
from lensvault.hashing import CHUNK
from lensvault.store.base import CommitCheck, ObjectKey, ObjectStat, ObjectStore, OnDone, is_oid, windows
from lensvault.store.linking import LinkStrategy, storage_error
from lensvault.store.local_files import LocalFiles, size_of, stage_in, unlink_quietly
from lensvault.store.owner import alive as owner_alive
from lensvault.store.owner import current as current_owner
from lensvault.store.refs import LocalRefs
from lensvault.store.verified import object_key

if TYPE_CHECKING:
    from lensvault.store.inode_index import InodeIndex, SharedListing
    from lensvault.store.leftovers import Leftover

__all__ = ["LocalObjectStore"]

# From this many oids, ``missing`` lists the shard folders instead of a stat per object.
_LIST_SHARDS_FROM = 2048


class LocalObjectStore(LocalRefs, ObjectStore):
    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).absolute()
        self.url = str(self.root)
        self.files = LocalFiles(str(self.root))

    def local(self) -> LocalFiles:
        return self.files

    def oid_to_path(self, oid: str) -> Path:
        return Path(self.files.path(oid))

    def path_to_oid(self, path: str | os.PathLike[str]) -> str:
        return self.files.oid_of(path)

    # -- set-up ------------------------------------------------------------------
    def create(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            (self.root / "tmp").mkdir(exist_ok=True)
            (self.root / "vaults").mkdir(exist_ok=True)
            (self.root / "pins").mkdir(exist_ok=True)
            for i in range(256):
                (self.root / f"{i:02x}").mkdir(exist_ok=True)
        except OSError as e:
            raise storage_error(e, str(self.root)) from e

    def exists(self) -> bool:
        return os.path.isdir(self.files.tmp)

    def register_vault(self, vault_id: str, vault_path: str | os.PathLike[str]) -> None:
        """Record that a vault uses this store, so gc in any vault sees every user."""
        p = self.root / "vaults" / f"{vault_id}.json"
        tmp = p.with_name(f".{current_owner()}-{p.name}.tmp")  # whole or absent: gc refuses one it cannot read
        tmp.write_text(json.dumps({"vault_id": vault_id, "path": str(vault_path)}))
        os.replace(tmp, p)

    def vaults(self) -> list[dict[str, str]]:
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
    def pin(self, oids: Iterable[str], *, owner: str | None = None) -> None:
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
        listed = list(oids)
        if not listed:
            return
        owner = owner or current_owner()
        d = self.root / "pins"
        name = f"{owner}-{uuid.uuid4().hex}"
        tmp = d / f".{name}.tmp"
        try:
            d.mkdir(exist_ok=True)
            tmp.write_text("\n".join(listed))
            os.replace(tmp, d / f"{name}.pin")
        except OSError as e:
            unlink_quietly(tmp)
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
                unlink_quietly(e.path)

    # -- the gc lock: a commit and gc's delete phase never overlap -----------------------
    @contextmanager
    def _lock(self, kind: int) -> Iterator[None]:
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
    def committing(self, oids: Iterable[str] = (), *, since: tuple[int, int, int] | None = None
                   ) -> Iterator[CommitCheck]:
        """Hold gc's delete phase off while a write that needs ``oids`` commits.

        Checks, under the lock, that every object is in the store: gc either ran before
        (and whatever it deleted is found missing here: ObjectsVanished) or runs after
        the commit (and sees the new references). ``since``: the ``deletion_mark`` taken before
        the write stored or found its objects; unmoved, nothing was deleted since and the check
        is skipped (gc deletes under the exclusive lock, so none is deleting now). Yields
        ``check(more_oids)`` for objects made inside the block. The caller's pins are released
        at the end.
        """
        import fcntl

        try:
            with self._lock(fcntl.LOCK_SH):
                if since is None or since != self.deletion_mark():
                    self._all_present(oids)
                yield self._all_present
        finally:
            self.release_pins()

    def _all_present(self, oids: Iterable[str]) -> None:
        # A window at a time: a million-file snapshot's fresh objects are never held at once.
        gone: list[str] = []
        for window in windows(oids):
            gone += self.missing(sorted(set(window)))
        if gone:
            raise ObjectsVanished(
                f"{len(gone)} object(s) this write needs left the store before it committed "
                f"(first: {gone[0][:12]}…); a gc or another process removed them",
                where=str(self.oid_to_path(gone[0])),
                fix="run the command again (it stores them again); gc never removes what a live writer pinned",
                missing=gone[:100],
            )

    @contextmanager
    def gc_lock(self) -> Iterator[None]:
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
                    shard = present.get(o[:2])
                    if shard is None:
                        try:
                            shard = present[o[:2]] = set(os.listdir(f"{root}/{o[:2]}"))
                        except FileNotFoundError:
                            shard = present[o[:2]] = set()
                    if o[2:] not in shard:
                        out.append(o)
                return out
        return [o for o in oids if not exists(f"{root}/{o[:2]}/{o[2:]}")]

    def open(self, oid: str) -> BinaryIO:
        try:
            return open(self.files.path(oid), "rb")
        except FileNotFoundError:
            raise self.missing_error(oid) from None

    def stat(self, oid: str) -> ObjectStat:
        try:
            st = os.stat(self.files.path(oid))
        except FileNotFoundError:
            raise self.missing_error(oid) from None
        return ObjectStat(st.st_size, st.st_ctime)

    def size(self, oid: str) -> int:
        try:
            return os.stat(self.files.path(oid)).st_size
        except FileNotFoundError:
            raise self.missing_error(oid) from None

    def absent_or_damaged(self, oids: list[str], sizes: list[int], inodes: list[int] | None = None) -> list[int]:
        """Indexes of the objects missing from the store or not of the given size.

        ``inodes``: the inodes of files the objects were hardlinked from, if so. An object that
        is still that inode is that file, so of its size: listing the shard folders with their
        inode numbers (~0.4 µs an entry) then answers for it without a stat (~3 µs). Used when
        the batch is big next to the store (one shard's size tells).
        """
        root = str(self.root)
        st = os.stat
        ino_of: dict[str, dict[str, int]] = {}
        if inodes is not None and len(oids) < _LIST_SHARDS_FROM:
            # A small batch (a scan's last) stats each object: listing the shards it touches would
            # list most of the store (~100 B an entry: 107 MB held for a million objects).
            inodes = None
        if inodes is not None:
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

    def inode_index(self, count: int) -> InodeIndex | None:
        """The store listed with inodes (``InodeIndex``) for asking about ``count`` objects at once, or
        None when listing does not pay (see ``inode_listing``)."""
        listing = self.inode_listing(count)
        return None if listing is None else listing.index(None)

    def inode_listing(self, count: int) -> SharedListing | None:
        """What lists the store with inodes for ``count`` objects asked at once, made by one process or
        shared by two (``SharedListing``), or None when the store is much bigger than that (four
        shards tell: stats are then fewer) or bigger than ``inode_index.LISTED_UP_TO`` objects (the
        index would hold too much)."""
        try:
            sampled = sum(len(os.listdir(f"{self.root}/{shard}")) for shard in ("00", "40", "80", "c0"))
        except OSError:
            return None
        from lensvault.store.inode_index import LISTED_UP_TO, SharedListing

        if sampled * 64 > 8 * count or sampled * 64 > LISTED_UP_TO:
            return None
        return SharedListing(self)

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

    def check_keyed(self, oid: str) -> tuple[str, ObjectKey | None]:
        """('ok' | 'missing' | 'corrupt', the object's (inode, size, mtime_ns) if it hashed right and
        kept that key while it was read — what ``store.verified`` records)."""
        return _check_keyed(self.files, oid)

    def check_many(self, oids: Sequence[str], *,
                   on_done: OnDone | None = None) -> Iterator[tuple[str, tuple[str, ObjectKey | None]]]:
        """``check_keyed`` of each object, hashed in forked workers for a big batch (they get the
        store's LocalFiles, not the store)."""
        from functools import partial

        from lensvault.hashing import hash_files

        return hash_files(oids, fn=partial(_check_keyed, self.files), on_done=on_done)

    # -- writing -------------------------------------------------------------------
    def put_bytes(self, data: bytes) -> str:
        oid = hashlib.sha256(data).hexdigest()
        # Pinned before it is looked at or renamed into place: a gc that lists it after
        # this sees the pin (gc reads the pins after listing the objects).
        self.pin([oid])
        files = self.files
        if files.intact(oid, len(data)):
            return oid
        tmp = files.temp_path()
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            files.finish(tmp, oid)
            files.fsync_dir(os.path.dirname(files.path(oid)))
        except OSError as e:
            unlink_quietly(tmp)
            raise storage_error(e, str(self.root)) from e
        except BaseException:
            unlink_quietly(tmp)
            raise
        return oid

    def put_files(self, items: Sequence[tuple[str, str]], *, on_done: OnDone | None = None) -> None:
        """Copy files already hashed in (see ObjectStore.put_files): staged in parallel, one syncfs."""
        todo: dict[str, str] = {}
        for src, oid in items:
            if oid not in todo:
                todo[oid] = src
        self.pin(todo)
        pending = [(src, oid) for oid, src in todo.items() if not self.files.intact(oid, size_of(src))]
        skipped = len(items) - len(pending)
        if on_done and skipped:
            on_done(skipped)
        if not pending:
            return
        from lensvault.store.base import LinkMode

        try:
            stage_in(self.files, pending, LinkStrategy(LinkMode.COPY), on_done)
        except OSError as e:
            if isinstance(e, StorageError):
                raise
            raise storage_error(e, str(self.root)) from e

    def restore(self, oid: str, src: str | os.PathLike[str]) -> bool:
        """Store ``src``'s bytes as object ``oid`` if they hash to it, replacing a missing or damaged
        object (a damaged one is never kept); False, and nothing changed, if they do not.

        The repair primitive: the bytes are hashed while they are copied to a temp file,
        which is made durable and renamed over the object only if the hash matches.
        """
        self.pin([oid])
        tmp = self.files.temp_path()
        try:
            with open(src, "rb") as f, open(tmp, "wb") as out:
                h = hashlib.sha256()
                while chunk := f.read(CHUNK):
                    h.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if h.hexdigest() != oid:
                unlink_quietly(tmp)
                return False
            self.files.finish(tmp, oid)
            self.files.fsync_dir(os.path.dirname(self.files.path(oid)))
        except FileNotFoundError:
            unlink_quietly(tmp)
            return False
        except OSError as e:
            unlink_quietly(tmp)
            raise storage_error(e, str(self.root)) from e
        except BaseException:
            unlink_quietly(tmp)
            raise
        return True

    def restore_bytes(self, oid: str, data: bytes) -> bool:
        """``restore`` from bytes in memory."""
        if hashlib.sha256(data).hexdigest() != oid:
            return False
        self.pin([oid])
        tmp = self.files.temp_path()
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            self.files.finish(tmp, oid)
            self.files.fsync_dir(os.path.dirname(self.files.path(oid)))
        except OSError as e:
            unlink_quietly(tmp)
            raise storage_error(e, str(self.root)) from e
        except BaseException:
            unlink_quietly(tmp)
            raise
        return True

    def quarantine(self, oid: str) -> str | None:
        """Move a corrupt object aside (``quarantine/OID``): its bytes are kept for inspection, and
        the store no longer serves them (the object is missing until good bytes are restored)."""
        try:
            moved = self.files.set_aside(oid)
        except OSError as e:
            raise storage_error(e, self.location(oid)) from e
        if moved is not None:
            self._note_deletion()
        return moved

    def delete(self, oid: str) -> None:
        try:
            os.unlink(self.files.path(oid))
        except FileNotFoundError:
            return
        except OSError as e:
            raise storage_error(e, self.location(oid)) from e
        self._note_deletion()

    # -- deletions: what lets a commit skip its presence check ---------------------------
    def deletion_mark(self) -> tuple[int, int, int] | None:
        """Where the store's deletions stand: (inode, size, mtime) of its ``deletions`` file, to which
        a byte is appended after every object this store deletes or sets aside. A write takes the
        mark before it stores or finds any object and hands it to ``committing(since=)``: if no
        object left the store since, every object it stored or found is still there, and the
        check of each (a stat per object: ~3 s for a million-file snapshot) is skipped."""
        path = f"{self.root}/deletions"
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o644))
            st = os.stat(path)
        except OSError:
            return None  # (a read-only store: every commit checks)
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _note_deletion(self) -> None:
        """After an object left the store: move the mark (see ``deletion_mark``). After, not before:
        a write that took the mark between a note and its unlink would miss the unlink. Failing
        that, the file goes, which moves the mark too (a new file is another inode or size)."""
        path = f"{self.root}/deletions"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, b".")
            finally:
                os.close(fd)
        except OSError:
            unlink_quietly(path)

    def leftovers(self, grace_seconds: float) -> list[Leftover]:
        """Temp files of writers that are gone (see store/leftovers.py), for gc to remove."""
        from lensvault.store.leftovers import scan_files

        found = (scan_files(self.files.tmp, "store temp file", grace_seconds)
                 + scan_files(self.files.pins, "pin temp file", grace_seconds, match=lambda n: n.endswith(".tmp")))
        # A ref (store/refs.py) is written through a hidden temp file beside it.
        for d, _dirs, _files in os.walk(self.root / "ledgers"):
            found += scan_files(d, "ledger temp file", grace_seconds,
                                match=lambda n: n.startswith(".") and n.endswith(".tmp"))
        return found + scan_files(self.root / "vaults", "vault record temp file", grace_seconds,
                                  match=lambda n: n.endswith(".tmp"))


def _check_keyed(files: LocalFiles, oid: str) -> tuple[str, ObjectKey | None]:
    path = files.path(oid)
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
        raise StorageError("an object cannot be read (permission denied)", where=path,
                           fix="give read permission to the store's objects (chmod -R a+r on the store folder)") from e
    if digest != oid:
        return "corrupt", None
    return "ok", (before if before == after else None)


def _pin_lines(path: str) -> list[str]:
    # Bytes, not text: a damaged pin file must not stop gc (a garbage line names no object).
    with open(path, "rb") as f:
        return [line.decode("ascii", "replace") for line in f.read().split(b"\n") if line]
