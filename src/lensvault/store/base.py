"""The object store interface: the only way to the bytes.

Everything above ``store/`` reaches objects through ``ObjectStore``: read (``has``,
``missing``, ``stat``, ``open``, ``read_bytes``, ``check``, ``iter_oids``), write
(``put_bytes``, ``put_files``, ``restore``), remove (``delete``, ``quarantine``), keep
gc off what writers rely on (``pin``, ``committing``, ``gc_lock``), name the vaults
sharing the store (``register_vault``, ``vaults``), report what killed writers left
(``leftovers``), and keep refs (``put_ref`` …). A backend implements these and nothing
else; ``LocalObjectStore`` (a folder on this machine), ``MemoryObjectStore`` (tests)
and, later, object storage.

Linking is not part of it. A store whose objects are files on this machine says
where they are (``local()``: a ``LocalFiles``, paths only, so worker processes get it
instead of the store); ``store/local_links.py`` hard-, sym- or reflinks through it,
and falls back to copying through ``open``/``put_files`` for a store without local
files.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from lensvault.errors import IntegrityError, ObjectMissing
    from lensvault.store.leftovers import Leftover
    from lensvault.store.local_files import LocalFiles

# How many items of a batch are done (progress bars): called with a count, repeatedly.
OnDone = Callable[[int], None]
# (inode, size, mtime_ns) of a local object (store/verified.py); None where it cannot be trusted.
ObjectKey = tuple[int, int, int]
# What ``committing`` yields: check that more objects (made inside the block) are all there.
CommitCheck = Callable[[Iterable[str]], None]

__all__ = ["CommitCheck", "LinkMode", "ObjectKey", "ObjectStat", "ObjectStore", "OnDone", "corrupt_object", "is_oid",
           "missing_object", "windows"]

_OID = re.compile(r"^[0-9a-f]{64}$")


def is_oid(text: str) -> bool:
    return bool(_OID.match(text))


def missing_object(oid: str, where: str) -> ObjectMissing:
    from lensvault.errors import ObjectMissing

    return ObjectMissing(
        f"object {oid[:12]}… is missing from the store",
        where=where,
        fix="restore it from a copy of the store, or re-snapshot the source; `lensvault verify` lists all missing objects",
        oid=oid,
    )


def corrupt_object(oid: str, where: str) -> IntegrityError:
    """The error for an object whose bytes no longer hash to its name (read_bytes, or a caller
    that hashes the object as it streams it)."""
    from lensvault.errors import IntegrityError

    return IntegrityError(
        f"object {oid[:12]}… is corrupt: its bytes no longer hash to its name",
        where=where,
        fix="run `lensvault verify --repair` (it restores manifests and tables from the repository "
            "and the stat cache; add --from DIR for files)",
        oid=oid, corrupt=[oid],
    )


class LinkMode(str, Enum):  # noqa: UP042 - a StrEnum's str() differs, and messages print it
    """How bytes move between a working folder and the store.

    AUTO tries a reflink (copy-on-write, safe and instant) and falls back to a
    copy. HARDLINK and SYMLINK are opt-in: they share bytes with the store, and an
    in-place edit of a linked file would change a stored object (objects are
    read-only to make that hard, and ``verify`` catches it). Only a store with
    local files can link (``ObjectStore.local``; see store/local_links.py).
    """

    AUTO = "auto"
    REFLINK = "reflink"
    HARDLINK = "hardlink"
    SYMLINK = "symlink"
    COPY = "copy"


@dataclass(frozen=True)
class ObjectStat:
    """What a store knows of an object without reading it."""

    size: int
    # When the object was last written into the store, in seconds since the epoch: what
    # gc's grace period is measured against. A local file's ctime (a hardlinked object keeps
    # the user's mtime, but linking it moved the ctime), object storage's LastModified.
    stored_at: float


class ObjectStore(ABC):
    url: str

    # -- set-up ------------------------------------------------------------------------------
    @abstractmethod
    def create(self) -> None:
        """Make the store ready for use (idempotent)."""

    @abstractmethod
    def exists(self) -> bool: ...

    def local(self) -> LocalFiles | None:
        """Where the objects are as files on this machine, or None (then nothing can link to them)."""
        return None

    def local_path(self, oid: str) -> str | None:
        """The file that holds object ``oid`` on this machine, if the store keeps local files."""
        files = self.local()
        return files.path(oid) if files is not None else None

    def location(self, oid: str) -> str:
        """Where object ``oid`` is, for messages: its file, or its URL."""
        return self.local_path(oid) or f"{self.url}/{oid}"

    def missing_error(self, oid: str) -> ObjectMissing:
        return missing_object(oid, self.location(oid))

    # -- reading -----------------------------------------------------------------------------
    @abstractmethod
    def has(self, oid: str) -> bool: ...

    @abstractmethod
    def missing(self, oids: list[str]) -> list[str]:
        """The oids the store does not have, in input order."""

    @abstractmethod
    def stat(self, oid: str) -> ObjectStat:
        """Size and storage time of an object; ObjectMissing if the store lacks it."""

    def size(self, oid: str) -> int:
        return self.stat(oid).size

    def absent_or_damaged(self, oids: list[str], sizes: list[int], inodes: list[int] | None = None) -> list[int]:
        """Indexes of the objects missing from the store or not of the given size.

        ``inodes``: the inodes of local files the objects were hardlinked from, a hint a
        store with local files may use to answer without a stat; others ignore it."""
        from lensvault.errors import ObjectMissing

        out = []
        for i, (o, n) in enumerate(zip(oids, sizes)):
            try:
                if self.stat(o).size != n:
                    out.append(i)
            except ObjectMissing:
                out.append(i)
        return out

    @abstractmethod
    def open(self, oid: str) -> BinaryIO:
        """A binary file object reading the object's bytes; ObjectMissing if it is not there."""

    def read_bytes(self, oid: str) -> bytes:
        """The object's bytes, hashed: a damaged manifest, table or bundle is an IntegrityError,
        never silently wrong metadata (sha256 costs ~30 ms for a million-row files table)."""
        import hashlib

        with self.open(oid) as f:
            data = f.read()
        if hashlib.sha256(data).hexdigest() != oid:
            raise corrupt_object(oid, self.location(oid))
        return data

    @abstractmethod
    def iter_oids(self) -> Iterator[str]:
        """Every object in the store (names only: a listing, no stat or read per object). With
        ``stat`` of the objects that matter it is a listing with ages (gc); an object-storage
        backend answers those ``stat`` calls from the listing it just made."""

    @abstractmethod
    def check(self, oid: str) -> str:
        """'ok', 'missing' or 'corrupt' after re-hashing the stored bytes."""

    def check_keyed(self, oid: str) -> tuple[str, ObjectKey | None]:
        """``check``, and the key under which a local object was verified (store/verified.py), or None."""
        return self.check(oid), None

    def check_many(self, oids: Sequence[str], *,
                   on_done: OnDone | None = None) -> Iterator[tuple[str, tuple[str, ObjectKey | None]]]:
        """``(oid, check_keyed(oid))`` for each oid, in order: verify's bulk re-hash. A backend
        spreads the work as suits it (local: forked workers; object storage: concurrent reads)."""
        for oid in oids:
            result = self.check_keyed(oid)
            if on_done:
                on_done(1)
            yield oid, result

    # -- writing -----------------------------------------------------------------------------
    @abstractmethod
    def put_bytes(self, data: bytes) -> str:
        """Store ``data`` (pinned for this process, see ``pin``); its oid."""

    @abstractmethod
    def put_files(self, items: Sequence[tuple[str, str]], *, on_done: OnDone | None = None) -> None:
        """Copy files already hashed into the store: items are (source path, oid). An object that
        is there intact is skipped; one there with another size is replaced. Pinned like ``put_bytes``.
        (Hard- and reflinking files in: store/local_links.py.)"""

    def restore(self, oid: str, src: str | os.PathLike[str]) -> bool:
        """Store the file ``src`` as object ``oid`` if its bytes hash to it, replacing a missing or
        damaged object (a damaged one is never kept); False, and nothing changed, if they do not.
        By default read whole into ``restore_bytes`` (the local store streams instead)."""
        try:
            with open(src, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return False
        return self.restore_bytes(oid, data)

    @abstractmethod
    def restore_bytes(self, oid: str, data: bytes) -> bool:
        """``restore`` from bytes in memory."""

    @abstractmethod
    def delete(self, oid: str) -> None:
        """Remove an object (gc, and an object known to be damaged); no error if it is gone."""

    def quarantine(self, oid: str) -> str | None:
        """Set a corrupt object aside so that it is no longer served; where it went, or None."""
        return None

    # -- gc: pins, the lock, leftovers -----------------------------------------------------------
    @abstractmethod
    def pin(self, oids: Iterable[str], *, owner: str | None = None) -> None:
        """Protect objects an uncommitted write relies on from gc (see LocalObjectStore.pin)."""

    @abstractmethod
    def pinned(self, grace_seconds: float) -> set[str]:
        """Oids pinned by live writers (or, for writers whose liveness cannot be told, within the grace period)."""

    @abstractmethod
    def release_pins(self) -> None:
        """Drop this process's pins: its writes have committed or failed."""

    def inode_index(self, count: int) -> Any:
        """An index of the whole store to ask about ``count`` hardlinked objects at once
        (``store/inode_index.py``), or None: ask the store itself (the default)."""
        return None

    def inode_listing(self, count: int) -> Any:
        """``inode_index`` to be made by the processes of a shared walk (``SharedListing``), or None."""
        return None

    def deletion_mark(self) -> tuple[int, int, int] | None:
        """A mark that moves whenever an object leaves the store, for ``committing(since=)``; None:
        this store keeps none (every commit checks its objects)."""
        return None

    @contextmanager
    def committing(self, oids: Iterable[str] = (), *, since: tuple[int, int, int] | None = None
                   ) -> Iterator[CommitCheck]:
        """Hold gc off while a write that needs ``oids`` commits; ObjectsVanished if one is missing
        (``since``: see ``LocalObjectStore.committing``; ignored here, as there is no mark).
        Yields ``check(more_oids)`` for objects made inside the block."""
        def check(more: Iterable[str]) -> None:
            gone = [o for window in windows(more) for o in self.missing(sorted(set(window)))]
            if gone:
                from lensvault.errors import ObjectsVanished

                raise ObjectsVanished(f"{len(gone)} object(s) this write needs are missing", where=self.url,
                                      fix="run the command again", missing=gone[:100])

        check(oids)
        yield check

    @contextmanager
    def gc_lock(self) -> Iterator[None]:
        """Held by gc while it decides what to delete and deletes it."""
        yield

    def leftovers(self, grace_seconds: float) -> list[Leftover]:
        """What writers that are gone left in the store (``store.leftovers.Leftover``), for gc to remove."""
        return []

    # -- the vaults sharing the store ----------------------------------------------------------
    @abstractmethod
    def register_vault(self, vault_id: str, vault_path: str | os.PathLike[str]) -> None:
        """Record that a vault uses this store, so gc in any vault sees every user."""

    @abstractmethod
    def vaults(self) -> list[dict[str, str]]:
        """Every vault registered with the store: ``{"vault_id", "path"}``, sorted by id."""

    # -- refs: named, non-content-addressed entries beside the objects (store/refs.py) ------------
    @abstractmethod
    def put_ref(self, name: str, data: bytes, *, exclusive: bool = False) -> bool:
        """Write ref ``name``, durably. With ``exclusive``, only if it does not exist yet (else False)."""

    @abstractmethod
    def get_ref(self, name: str) -> bytes | None: ...

    @abstractmethod
    def delete_ref(self, name: str) -> None: ...

    @abstractmethod
    def list_refs(self, prefix: str) -> list[str]:
        """Every ref under folder ``prefix``, sorted by name."""

    @abstractmethod
    def ref_age(self, name: str) -> float | None:
        """Seconds since ref ``name`` was last written; None if there is no such ref."""

    def ref_location(self, name: str) -> str:
        """Where ref ``name`` is, for messages (a path, a URL)."""
        return name


CHECK_WINDOW = 65_536  # objects a commit checks at once (``windows``)


def windows(items: Iterable[str], size: int | None = None) -> Iterator[list[str]]:
    """``items`` a list of ``size`` (``CHECK_WINDOW``) at a time, as ``itertools.batched`` (Python
    >= 3.12) does: what a commit checks is a stream that may name a million objects, never held
    at once."""
    size = size or CHECK_WINDOW
    window: list[str] = []
    for item in items:
        window.append(item)
        if len(window) >= size:
            yield window
            window = []
    if window:
        yield window
