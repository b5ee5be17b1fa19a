"""An object store in this process's memory: the interface's second implementation.

It keeps no files, so nothing can link to its objects (``local()`` is None: checkouts
copy, ``--link hardlink`` is refused) and nothing written by a forked child reaches
it (background writers are skipped for it). The tests run the core store, dataset,
verify and gc behaviour against it beside ``LocalObjectStore``: what passes on both
relies on the interface alone — the proof that a backend on object storage can be
added without touching callers.

``memory://NAME`` opens the store of that name made in this process (``create``
registers it), so a vault reopened in the same process finds its objects; in any
other process the store is empty. For tests and experiments only.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import BinaryIO

from lensvault.store.base import CommitCheck, ObjectStat, ObjectStore, OnDone
from lensvault.store.owner import alive as owner_alive
from lensvault.store.owner import current as current_owner
from lensvault.store.refs import check_ref_name

__all__ = ["MemoryObjectStore", "open_memory_store"]

_STORES: dict[str, MemoryObjectStore] = {}


def open_memory_store(name: str) -> MemoryObjectStore:
    return _STORES.get(name) or MemoryObjectStore(name)


class MemoryObjectStore(ObjectStore):
    def __init__(self, name: str):
        self.name = name
        self.url = f"memory://{name}"
        self._objects: dict[str, tuple[bytes, float]] = {}  # oid → (bytes, stored_at)
        self._quarantine: dict[str, bytes] = {}
        self._pins: dict[str, list[tuple[float, set[str]]]] = {}  # owner → [(pinned at, oids)]
        self._vaults: dict[str, dict[str, str]] = {}
        self._refs: dict[str, bytes] = {}
        self._ref_written: dict[str, float] = {}
        self._lock = threading.RLock()
        self._gc = threading.RLock()

    # -- set-up -------------------------------------------------------------------------------
    def create(self) -> None:
        _STORES.setdefault(self.name, self)

    def exists(self) -> bool:
        return _STORES.get(self.name) is self

    # -- reading ------------------------------------------------------------------------------
    def has(self, oid: str) -> bool:
        return oid in self._objects

    def missing(self, oids: list[str]) -> list[str]:
        return [o for o in oids if o not in self._objects]

    def stat(self, oid: str) -> ObjectStat:
        try:
            data, at = self._objects[oid]
        except KeyError:
            raise self.missing_error(oid) from None
        return ObjectStat(len(data), at)

    def open(self, oid: str) -> BinaryIO:
        try:
            return io.BytesIO(self._objects[oid][0])
        except KeyError:
            raise self.missing_error(oid) from None

    def iter_oids(self) -> Iterator[str]:
        yield from sorted(self._objects)

    def check(self, oid: str) -> str:
        found = self._objects.get(oid)
        if found is None:
            return "missing"
        return "ok" if hashlib.sha256(found[0]).hexdigest() == oid else "corrupt"

    # -- writing ------------------------------------------------------------------------------
    def _put(self, oid: str, data: bytes) -> None:
        with self._lock:
            found = self._objects.get(oid)
            if found is None or len(found[0]) != len(data):  # a damaged object is replaced
                self._objects[oid] = (bytes(data), time.time())

    def put_bytes(self, data: bytes) -> str:
        oid = hashlib.sha256(data).hexdigest()
        self.pin([oid])
        self._put(oid, data)
        return oid

    def put_files(self, items: Sequence[tuple[str, str]], *, on_done: OnDone | None = None) -> None:
        from lensvault.store.linking import storage_error

        self.pin({oid for _, oid in items})
        for src, oid in items:
            found = self._objects.get(oid)
            if found is None or len(found[0]) != _size(src):
                try:
                    with open(src, "rb") as f:
                        self._put(oid, f.read())
                except OSError as e:
                    raise storage_error(e, src) from e
            if on_done:
                on_done(1)

    def restore_bytes(self, oid: str, data: bytes) -> bool:
        if hashlib.sha256(data).hexdigest() != oid:
            return False
        self.pin([oid])
        with self._lock:
            self._objects[oid] = (bytes(data), time.time())
        return True

    def delete(self, oid: str) -> None:
        with self._lock:
            self._objects.pop(oid, None)

    def quarantine(self, oid: str) -> str | None:
        with self._lock:
            found = self._objects.pop(oid, None)
            if found is None:
                return None
            self._quarantine[oid] = found[0]
        return f"{self.url}/quarantine/{oid}"

    def damage(self, oid: str, data: bytes) -> None:
        """Replace an object's bytes with others (tests: what bit rot or an in-place edit does)."""
        with self._lock:
            self._objects[oid] = (bytes(data), self._objects[oid][1] if oid in self._objects else time.time())

    # -- gc -------------------------------------------------------------------------------------
    def pin(self, oids: Iterable[str], *, owner: str | None = None) -> None:
        pinned = set(oids)
        if pinned:
            with self._lock:
                self._pins.setdefault(owner or current_owner(), []).append((time.time(), pinned))

    def pinned(self, grace_seconds: float) -> set[str]:
        out: set[str] = set()
        now = time.time()
        with self._lock:
            for owner, pins in list(self._pins.items()):
                live = owner_alive(owner)
                kept = [(at, oids) for at, oids in pins
                        if live is True or (live is None and now - at <= grace_seconds)]
                if kept:
                    self._pins[owner] = kept
                else:
                    del self._pins[owner]
                for _, oids in kept:
                    out |= oids
        return out

    def release_pins(self) -> None:
        with self._lock:
            self._pins.pop(current_owner(), None)

    @contextmanager
    def committing(self, oids: Iterable[str] = (), *, since: tuple[int, int, int] | None = None
                   ) -> Iterator[CommitCheck]:
        try:
            with self._gc, super().committing(oids) as check:
                yield check
        finally:
            self.release_pins()

    @contextmanager
    def gc_lock(self) -> Iterator[None]:
        with self._gc:
            yield

    # -- the vaults sharing it -------------------------------------------------------------------
    def register_vault(self, vault_id: str, vault_path: str | os.PathLike[str]) -> None:
        self._vaults[vault_id] = {"vault_id": vault_id, "path": str(vault_path)}

    def vaults(self) -> list[dict[str, str]]:
        return [self._vaults[k] for k in sorted(self._vaults)]

    # -- refs -------------------------------------------------------------------------------------
    def put_ref(self, name: str, data: bytes, *, exclusive: bool = False) -> bool:
        check_ref_name(name)
        with self._lock:
            if exclusive and name in self._refs:
                return False
            self._refs[name] = bytes(data)
            self._ref_written[name] = time.time()
        return True

    def get_ref(self, name: str) -> bytes | None:
        return self._refs.get(check_ref_name(name))

    def delete_ref(self, name: str) -> None:
        with self._lock:
            self._refs.pop(check_ref_name(name), None)

    def ref_age(self, name: str) -> float | None:
        written = self._ref_written.get(check_ref_name(name))
        return None if written is None or name not in self._refs else max(0.0, time.time() - written)

    def list_refs(self, prefix: str) -> list[str]:
        base = check_ref_name(prefix).rstrip("/") + "/"
        return sorted(n for n in self._refs if n.startswith(base))


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return -1
