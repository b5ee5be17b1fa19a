"""Content-addressed object storage.

``ObjectStore`` (store/base.py) is the interface and the only way to the bytes;
``LocalObjectStore`` keeps objects on a local filesystem, ``MemoryObjectStore`` in
this process (tests). Backends are chosen by URL scheme, so an object-storage
backend is one more class and one more branch of ``open_store``, without touching
callers. Linking files in and out of a store with local files: store/local_links.py.
"""

from __future__ import annotations

import os
from pathlib import Path

from lensvault.errors import UsageError
from lensvault.store.base import LinkMode, ObjectStore, is_oid
from lensvault.store.local import LocalObjectStore

__all__ = ["LinkMode", "LocalObjectStore", "ObjectStore", "is_oid", "open_store"]


def open_store(url: str | os.PathLike[str], *, base: Path | None = None) -> ObjectStore:
    text = os.fspath(url)
    scheme, sep, rest = text.partition("://")
    if not sep:
        path = Path(text).expanduser()
        if not path.is_absolute() and base is not None:
            path = base / path
        return LocalObjectStore(path)
    if scheme == "file":
        return LocalObjectStore(Path(rest))
    if scheme == "memory":
        from lensvault.store.memory import open_memory_store

        return open_memory_store(rest)
    if scheme == "s3":
        raise UsageError(
            "S3 stores are not supported yet",
            where=text,
            fix="use a local or network-mounted path for --store",
        )
    raise UsageError(f"unknown store URL scheme {scheme!r}", where=text, fix="use a filesystem path")
