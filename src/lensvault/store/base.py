"""The object store interface: has / put / open / materialize / iterate / delete."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
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

    @abstractmethod
    def put_bytes(self, data: bytes) -> str: ...

    @abstractmethod
    def put_files(self, items: list[tuple[str, str]], link: LinkMode, *, on_done=None) -> None:
        """Store files already hashed: items are (source path, oid)."""

    @abstractmethod
    def open(self, oid: str) -> BinaryIO: ...

    def read_bytes(self, oid: str) -> bytes:
        with self.open(oid) as f:
            return f.read()

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

    def ingest_batch(self, link: LinkMode):
        """A batch that stores files while workers hash them, or None (then: hash, then put_files)."""
        return None

    def pin(self, oids) -> None:
        """Protect objects an uncommitted write relies on from gc (see LocalObjectStore.pin)."""

    def pinned(self, grace_seconds: float) -> set[str]:
        return set()

    # -- refs: named, non-content-addressed files beside the objects (store/refs.py) ----------
    def put_ref(self, name: str, data: bytes, *, exclusive: bool = False) -> bool:
        raise NotImplementedError

    def get_ref(self, name: str) -> bytes | None:
        raise NotImplementedError

    def delete_ref(self, name: str) -> None:
        raise NotImplementedError

    def list_refs(self, prefix: str) -> list[str]:
        raise NotImplementedError
