"""The object store interface: has / put / open / materialize / iterate / delete."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import BinaryIO

__all__ = ["LinkMode", "ObjectStore", "is_oid"]

_OID = re.compile(r"^[0-9a-f]{64}$")


def is_oid(text: str) -> bool:
    return bool(_OID.match(text))


class LinkMode(str, Enum):
    """How bytes move between a working folder and the store.

    AUTO tries a reflink (copy-on-write, safe and instant) and falls back to a
    copy. HARDLINK and SYMLINK are opt-in: they share bytes with the store, and an
    in-place edit of a linked file would change a stored object (objects are
    read-only to make that hard, and ``verify`` catches it).
    """

    AUTO = "auto"
    REFLINK = "reflink"
    HARDLINK = "hardlink"
    SYMLINK = "symlink"
    COPY = "copy"


class ObjectStore(ABC):
    url: str

    @abstractmethod
    def has(self, oid: str) -> bool: ...

    @abstractmethod
    def missing(self, oids: list[str]) -> list[str]:
        """The oids the store does not have, in input order."""

    def absent_or_damaged(self, oids: list[str], sizes: list[int], inodes: list[int] | None = None) -> list[int]:
        """Indexes of the objects missing from the store or not of the given size."""
        out = []
        for i, (o, n) in enumerate(zip(oids, sizes)):
            try:
                if self.size(o) != n:
                    out.append(i)
            except KeyError:  # ObjectMissing
                out.append(i)
        return out

    def shares_inode(self, oid: str, ino: int) -> bool:
        """Whether object ``oid`` is the local file with inode ``ino`` (a store that links files in)."""
        return False

    def drop_damaged(self, oid: str, ino: int) -> bool:
        return False

    @abstractmethod
    def put_bytes(self, data: bytes) -> str: ...

    @abstractmethod
    def put_files(self, items: list[tuple[str, str]], link: LinkMode, *, on_done=None) -> None:
        """Store files already hashed: items are (source path, oid)."""

    @abstractmethod
    def open(self, oid: str) -> BinaryIO: ...

    def read_bytes(self, oid: str) -> bytes:
        """The object's bytes, hashed: a damaged manifest, table or bundle is an IntegrityError,
        never silently wrong metadata (sha256 costs ~30 ms for a million-row files table)."""
        import hashlib

        with self.open(oid) as f:
            data = f.read()
        if hashlib.sha256(data).hexdigest() != oid:
            from lensvault.errors import IntegrityError

            raise IntegrityError(
                f"object {oid[:12]}… is corrupt: its bytes no longer hash to its name",
                where=str(self.oid_to_path(oid)) if hasattr(self, "oid_to_path") else oid,
                fix="run `lensvault verify --repair` (it restores manifests and tables from the repository "
                    "and the stat cache; add --from DIR for files)",
                oid=oid, corrupt=[oid],
            )
        return data

    @abstractmethod
    def materialize(self, items: list[tuple[str, Path]], link: LinkMode, *, on_done=None) -> None:
        """Write objects to destination paths: items are (oid, dest)."""

    @abstractmethod
    def iter_oids(self) -> Iterator[str]: ...

    @abstractmethod
    def size(self, oid: str) -> int: ...

    @abstractmethod
    def check(self, oid: str) -> str:
        """'ok', 'missing' or 'corrupt' after re-hashing the stored bytes."""

    @abstractmethod
    def delete(self, oid: str) -> None: ...

    def restore(self, oid: str, src) -> bool:
        """Store the file ``src`` as object ``oid`` if its bytes hash to it, replacing a missing or
        damaged object; False if they do not (see LocalObjectStore.restore)."""
        raise NotImplementedError

    def restore_bytes(self, oid: str, data: bytes) -> bool:
        raise NotImplementedError

    def quarantine(self, oid: str) -> str | None:
        """Set a corrupt object aside so that it is no longer served; where it went, or None."""
        return None

    def ingest_batch(self, link: LinkMode):
        """A batch that stores files while workers hash them, or None (then: hash, then put_files)."""
        return None

    def pin(self, oids, *, owner: str | None = None) -> None:
        """Protect objects an uncommitted write relies on from gc (see LocalObjectStore.pin)."""

    def pinned(self, grace_seconds: float) -> set[str]:
        return set()

    def release_pins(self) -> None:
        """Drop this process's pins: its writes have committed or failed."""

    @contextmanager
    def committing(self, oids=()):
        """Hold gc off while a write that needs ``oids`` commits; ObjectsVanished if one is missing.
        Yields ``check(more_oids)`` for objects made inside the block."""
        def check(more) -> None:
            gone = self.missing(sorted(set(more)))
            if gone:
                from lensvault.errors import ObjectsVanished

                raise ObjectsVanished(f"{len(gone)} object(s) this write needs are missing", where=self.url,
                                      fix="run the command again", missing=gone[:100])

        check(oids)
        yield check

    @contextmanager
    def gc_lock(self):
        """Held by gc while it decides what to delete and deletes it."""
        yield

    def leftovers(self, grace_seconds: float) -> list:
        """Temp files of writers that are gone (``store.leftovers.Leftover``)."""
        return []

    # -- refs: named, non-content-addressed files beside the objects (store/refs.py) ----------
    def put_ref(self, name: str, data: bytes, *, exclusive: bool = False) -> bool:
        raise NotImplementedError

    def get_ref(self, name: str) -> bytes | None:
        raise NotImplementedError

    def delete_ref(self, name: str) -> None:
        raise NotImplementedError

    def list_refs(self, prefix: str) -> list[str]:
        raise NotImplementedError
