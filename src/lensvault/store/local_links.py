"""Links between working folders and a store: hard-, sym- and reflinks where the store keeps
local files, copies through the store interface where it does not.

Linking is not the store's business: a backend moves bytes (``put_files``, ``open``), and
one whose objects are files on this machine says where (``ObjectStore.local()``, a
``LocalFiles``: paths only). Everything here works through that:

- ``materialize``: objects → destination paths (checkout, pull, a run's data folder);
  ``place`` one object (export). A copy hashes what it copies, so corrupt bytes never
  leave the store silently; a link shares the object's bytes, which the caller checks
  (store/verified.py) with ``object_keys``.
- ``put_files``: files already hashed → the store, by hardlink or reflink into its
  layout; a copy (and anything for a store without local files) is ``store.put_files``.
- ``ingest_batch``: storing files from the worker processes that hash them
  (store/staging.py), for a store with local files.
- ``shares_inode`` / ``drop_if_linked``: damage seen through a hardlinked file.

A store without local files (object storage, the in-memory test store) copies in
``auto`` mode and refuses ``hardlink``, ``symlink`` and ``reflink`` with a clear error.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Protocol, TypeVar

# (Module-level imports: these functions also run in forked workers, which must import nothing.)
from lensvault.errors import IntegrityError, StorageError, UsageError
from lensvault.hashing import CHUNK, read_small
from lensvault.store.base import LinkMode, ObjectStore, missing_object
from lensvault.store.linking import LinkStrategy, storage_error
from lensvault.store.local_files import READ_ONLY, LocalFiles, parallel, size_of, stage_in, write_all

if TYPE_CHECKING:
    from lensvault.store.base import ObjectKey, OnDone
    from lensvault.store.staging import IngestBatch

# (oid, destination): an object to put at a path.
Placement = tuple[str, "str | os.PathLike[str]"]
T = TypeVar("T", bound=tuple[object, "str | os.PathLike[str]"])


class Materialize(Protocol):
    def __call__(self, items: Sequence[Placement], *, on_done: OnDone | None = None) -> set[LinkMode]: ...

__all__ = ["check_link", "drop_if_linked", "ingest_batch", "materialize", "materializing", "object_keys", "place",
           "put_files", "same_filesystem", "shares_inode", "supports_reflink", "trusted_roots"]


def check_link(store: ObjectStore, link: LinkMode) -> None:
    """Links need files on this machine: a store without them refuses every mode but copy and auto."""
    if store.local() is None and link not in (LinkMode.COPY, LinkMode.AUTO):
        raise UsageError(
            f"--link {link.value} needs a store whose objects are files on this machine; {store.url} is not one",
            where=f"--link {link.value}",
            fix="use --link copy (or auto)",
        )


# -- store → folders ----------------------------------------------------------------------------


def materialize(store: ObjectStore, items: Sequence[Placement], link: LinkMode | str, *,
                on_done: OnDone | None = None) -> set[LinkMode]:
    """Write objects to destinations (items: (oid, dest path)); the modes used (a copy was hashed
    as it was made; linked or reflinked objects are the caller's to check, see store/verified.py)."""
    link = LinkMode(link)
    check_link(store, link)
    files = store.local()
    strategy = LinkStrategy(link if files is not None else LinkMode.COPY)
    used: set[LinkMode] = set()

    def one(item: Placement) -> None:
        oid, dest = item
        mode = place(store, strategy, oid, dest, files=files)
        used.add(mode)
        if on_done:
            on_done(1)

    try:
        if files is not None and strategy.mode in (LinkMode.HARDLINK, LinkMode.SYMLINK):
            # Metadata only: threads would add nothing but GIL hand-offs; forked
            # workers (for big jobs) halve the Python around each link. They get the
            # store's LocalFiles (paths), never the store.
            from lensvault.parallel import CHUNK as PART
            from lensvault.parallel import map_chunks

            for _ in map_chunks(partial(_link_part, files, strategy), _spread_by_folder(items, PART),
                                on_done=on_done):
                pass
            used.add(strategy.mode)
        else:
            parallel(one, items)
    except OSError as e:
        if isinstance(e, StorageError):
            raise
        raise storage_error(e, str(items[0][1]) if items else store.url) from e
    return used


@contextmanager
def materializing(store: ObjectStore, link: LinkMode | str) -> Iterator[Materialize]:
    """``materialize`` for a stream of batches (a checkout's): yields ``place(items, on_done)``,
    which writes one batch and returns the modes used. The worker processes that hard- or
    symlink are started once for every batch: a pool per batch cost ~35 ms (2 s for a million
    files in batches of 16,384)."""
    from lensvault.parallel import CHUNK as PART
    from lensvault.parallel import ChunkMapper

    link = LinkMode(link)
    check_link(store, link)
    files = store.local()
    strategy = LinkStrategy(link if files is not None else LinkMode.COPY)
    if files is None or strategy.mode not in (LinkMode.HARDLINK, LinkMode.SYMLINK):
        yield partial(materialize, store, link=link)
        return
    with ChunkMapper(partial(_link_part, files, strategy)) as mapper:

        def place(items: Sequence[Placement], *, on_done: OnDone | None = None) -> set[LinkMode]:
            try:
                mapper.feed(_spread_by_folder(items, PART))
                for _ in mapper.results(on_done):
                    pass
            except OSError as e:
                if isinstance(e, StorageError):
                    raise
                raise storage_error(e, str(items[0][1]) if items else store.url) from e
            return {strategy.mode}

        yield place


def _spread_by_folder(items: Sequence[T], chunk: int) -> list[T]:
    """``items`` reordered so that consecutive chunks go to different destination folders.

    Two workers linking into one folder queue on its lock (ext4 serializes entry
    inserts per directory): on 50,000 files in 50 folders, two workers in path
    order were barely faster than one (0.94 s vs 1.0 s); dealt out folder by folder, 0.73 s.
    """
    groups: dict[str, list[T]] = {}
    for item in items:
        groups.setdefault(str(item[1]).rpartition("/")[0], []).append(item)
    if len(groups) < 2:
        return list(items)
    queues = list(groups.values())
    out: list[T] = []
    while queues:
        for q in queues:
            out.extend(q[:chunk])
            del q[:chunk]
        queues = [q for q in queues if q]
    return out


def _link_part(files: LocalFiles, strategy: LinkStrategy, part: list[Placement]) -> list[None]:
    """In a worker (or in-process for small jobs): hard- or symlink objects to their destinations."""
    for oid, dest in part:
        _place_local(files, strategy, oid, dest)
    return [None] * len(part)  # the mapper's contract: one result per item


def place(store: ObjectStore, strategy: LinkStrategy, oid: str, dest: str | os.PathLike[str], *,
          files: LocalFiles | None = None) -> LinkMode:
    """Put object ``oid`` at the new file ``dest`` by ``strategy``; the mode used. ObjectMissing if
    the store lacks it; IntegrityError if a copy finds its bytes are not ``oid``'s.

    A reflinked file is made writable (a copy is the user's to edit); shared bytes stay read-only.
    """
    files = files or store.local()
    if files is None:
        _copy_from_store(store, oid, str(dest))
        return LinkMode.COPY
    mode = _place_local(files, strategy, oid, dest)
    if mode is LinkMode.REFLINK:
        os.chmod(dest, 0o644)
    return mode


def _place_local(files: LocalFiles, strategy: LinkStrategy, oid: str, dest: str | os.PathLike[str]) -> LinkMode:
    src = files.path(oid)
    mode = strategy.effective
    if mode is LinkMode.COPY:
        copy_checked(files, oid, str(dest))
        return mode
    if mode is LinkMode.SYMLINK and not os.path.exists(src):
        raise missing_object(oid, src)  # a symlink to nothing would be made without complaint
    try:
        used = strategy.apply(src, str(dest))
    except FileNotFoundError:
        if not os.path.exists(src):
            raise missing_object(oid, src) from None
        raise
    if used is LinkMode.COPY:  # AUTO found no reflinks: do this one again, checked
        os.unlink(dest)
        copy_checked(files, oid, str(dest))
    return used


def _corrupt(oid: str, where: str) -> IntegrityError:
    return IntegrityError(
        f"object {oid[:12]}… is corrupt: its bytes no longer hash to its name",
        where=where,
        fix="run `lensvault verify --repair` (give a folder that holds the original file with --from DIR)",
        oid=oid, corrupt=[oid],
    )


def copy_checked(files: LocalFiles, oid: str, dest: str) -> None:
    """Copy a local object to a new file, hashing what is read; IntegrityError if it is not ``oid``'s bytes.

    One read of a small object into this thread's reused buffer, then one write: the hash
    costs a fraction of the copy (sha256 runs at ~1.5 GB/s and releases the GIL).
    """
    src = files.path(oid)
    try:
        fd = os.open(src, os.O_RDONLY)
    except FileNotFoundError:
        raise missing_object(oid, src) from None
    try:
        out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            h = hashlib.sha256()
            data = read_small(fd)
            if data is not None:
                h.update(data)
                write_all(out, data)
            else:
                os.lseek(fd, 0, os.SEEK_SET)
                while chunk := os.read(fd, CHUNK):
                    h.update(chunk)
                    write_all(out, chunk)
            os.fchmod(out, 0o644)  # copies are the user's to edit, whatever the umask
        finally:
            os.close(out)
    finally:
        os.close(fd)
    if h.hexdigest() != oid:
        raise _corrupt(oid, src)


def _copy_from_store(store: ObjectStore, oid: str, dest: str) -> None:
    """``copy_checked`` for a store without local files: stream ``open``'s bytes, hashing them."""
    with store.open(oid) as f:
        out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            h = hashlib.sha256()
            while chunk := f.read(CHUNK):
                h.update(chunk)
                write_all(out, chunk)
            os.fchmod(out, 0o644)
        finally:
            os.close(out)
    if h.hexdigest() != oid:
        raise _corrupt(oid, store.location(oid))


def object_keys(store: ObjectStore, oids: Iterable[str]) -> list[ObjectKey | None]:
    """The ``(inode, size, mtime_ns)`` of each local object (store/verified.py), None where it cannot be stat'ed."""
    from lensvault.store.verified import object_key

    files = store.local()
    out: list[ObjectKey | None] = []
    for oid in oids:
        try:
            out.append(object_key(os.stat(files.path(oid))) if files is not None else None)
        except OSError:
            out.append(None)
    return out


def shares_inode(store: ObjectStore, oid: str, ino: int) -> bool:
    """Whether object ``oid`` is the local file with inode ``ino`` (hardlinked into the store)."""
    path = store.local_path(oid)
    if path is None:
        return False
    try:
        return os.stat(path).st_ino == ino
    except OSError:
        return False


def drop_if_linked(store: ObjectStore, oid: str, ino: int) -> bool:
    """Remove object ``oid`` if it is still the inode ``ino``, whose bytes are known not to be ``oid``'s."""
    if not shares_inode(store, oid, ino):
        return False
    store.delete(oid)
    return True


# -- folders → store ----------------------------------------------------------------------------


def put_files(store: ObjectStore, items: Sequence[tuple[str, str]], link: LinkMode | str, *,
              on_done: OnDone | None = None) -> None:
    """Store files already hashed (items: (source path, oid)) by ``link``: a hardlink or reflink
    into a store with local files, else a copy (``store.put_files``). An object already there
    intact is kept; one there with another size is replaced by the file."""
    link = LinkMode(link)
    if link is LinkMode.SYMLINK:
        # A store object that points back into the user's folder would not be
        # content-addressed at all (snapshots refuse it: datasets/ingest.py).
        link = LinkMode.COPY
    check_link(store, link)
    files = store.local()
    if files is None or link is LinkMode.COPY:
        store.put_files(items, on_done=on_done)
        return
    todo: dict[str, str] = {}
    for src, oid in items:
        if oid not in todo:
            todo[oid] = src
    store.pin(todo)
    if link is LinkMode.HARDLINK:
        # Linking onto an existing object fails with EEXIST, which _link_in checks
        # then: no need to stat every object first.
        pending = [(src, oid) for oid, src in todo.items()]
    else:
        pending = [(src, oid) for oid, src in todo.items() if not files.intact(oid, size_of(src))]
    skipped = len(items) - len(pending)
    if on_done and skipped:
        on_done(skipped)
    if not pending:
        return
    strategy = LinkStrategy(link)
    try:
        if link is LinkMode.HARDLINK:
            _link_in(files, pending, strategy, on_done)
        else:
            stage_in(files, pending, strategy, on_done)
    except OSError as e:
        if isinstance(e, StorageError):
            raise
        raise storage_error(e, files.root) from e


def _link_in(files: LocalFiles, pending: Sequence[tuple[str, str]], strategy: LinkStrategy,
             on_done: OnDone | None) -> None:
    # A hardlink is a directory entry, complete the moment it exists: no temp
    # file needed. Only the directory entries must reach the disk, so the
    # touched shard folders are fsynced — not the whole filesystem, whose
    # dirty pages (often the very dataset just written) are not ours to flush.
    for src, oid in pending:
        dst = files.path(oid)
        try:
            strategy.apply(src, dst)
        except FileExistsError:
            if not files.intact(oid, size_of(src)):
                tmp = files.temp_path()  # a damaged object: the file replaces it
                strategy.apply(src, tmp)
                os.replace(tmp, dst)
        os.chmod(dst, READ_ONLY)
        if on_done:
            on_done(1)
    files.fsync_shards(oid for _, oid in pending)


def ingest_batch(store: ObjectStore, link: LinkMode | str) -> IngestBatch | None:
    """A batch that stores files while worker processes hash them (store/staging.py), or None:
    then hash first and ``put_files`` afterwards (reflinks; a store without local files)."""
    link = LinkMode(link)
    check_link(store, link)
    files = store.local()
    if files is None:
        return None
    if link is LinkMode.AUTO and not supports_reflink(files):
        link = LinkMode.COPY
    if link not in (LinkMode.HARDLINK, LinkMode.COPY):
        return None
    from lensvault.store.staging import IngestBatch

    return IngestBatch(files, link)


_REFLINK: dict[str, bool] = {}


def supports_reflink(files: LocalFiles) -> bool:
    """Whether the store's filesystem can reflink (probed once per process, in its temp folder)."""
    found = _REFLINK.get(files.root)
    if found is None:
        from lensvault.store.linking import reflink

        a, b = files.temp_path() + ".probe", files.temp_path() + ".probe"
        try:
            with open(a, "wb") as f:
                f.write(b"probe")
            reflink(a, b)
            found = True
        except OSError:
            found = False
        finally:
            for p in (a, b):
                try:
                    os.unlink(p)
                except OSError:
                    pass
        _REFLINK[files.root] = found
    return found


def shares_bytes_by(store: ObjectStore, link: LinkMode | str) -> bool:
    """Whether ``link`` may share an object's bytes (a hardlink, symlink or reflink), so that the
    objects must be verified before they are handed out (store/verified.py)."""
    link = LinkMode(link)
    files = store.local()
    if files is None:
        return False
    return link in (LinkMode.HARDLINK, LinkMode.SYMLINK, LinkMode.REFLINK) or (
        link is LinkMode.AUTO and supports_reflink(files))


def same_filesystem(store: ObjectStore, path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is on the filesystem of the store's local files (hardlinks are possible)."""
    files = store.local()
    if files is None:
        return False
    try:
        return os.stat(path).st_dev == os.stat(files.root).st_dev
    except OSError:
        return False


def trusted_roots(store: ObjectStore) -> tuple[str, ...]:
    """Folders a source folder's symlinks may lead into: the store's own local files (a
    `checkout --link symlink` is all links there), whose objects are this vault's bytes."""
    files = store.local()
    return (os.path.realpath(files.root),) if files is not None else ()
