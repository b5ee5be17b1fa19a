"""What one server process holds: the vault it reads through, and caches of immutable answers."""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path

__all__ = ["PICTURE_BYTES", "PICTURE_CHECKED_FOR", "ServerState", "exact_ref"]

# name@X.Y.Z(-pre): a written dataset version never changes, so answers about it can be kept.
_EXACT = re.compile(r"^[^@]+@\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")


# Thumbnails kept in memory per process (besides the machine-local cache on disk): a page of
# images asks for 48 at once, and a kept one is answered without a file read or a worker thread.
PICTURE_BYTES = 32 * 1024 * 1024
# How long a kept thumbnail is sent without asking the store whether its object is still there
# (gc may remove it): asking is a file system call, which on the event loop gives the
# interpreter lock to a worker thread and waits to get it back. After this many seconds the
# next request goes through a worker thread, which asks, and sends 404 if the object is gone.
PICTURE_CHECKED_FOR = 30.0


def exact_ref(ref: str) -> bool:
    return bool(_EXACT.match(ref))


class ServerState:
    def __init__(self, root: Path, *, public_read: bool, warm: bool = True):
        import lensvault

        self.root = Path(root)
        self.public_read = public_read
        # The vault every read goes through. Its actor is whoever runs the server: reads
        # record nothing, except that listing runs marks runs whose process died as crashed.
        self.vault = lensvault.open(self.root)
        self.vault.keep_versions(16)
        self.vault.catalog  # opened (and checked) now, not racing on the first requests  # noqa: B018
        self.vault.store  # noqa: B018
        from lensvault.server.turns import Turns

        self.turns = Turns(on_loop=self.vault.config.catalog_url.startswith("sqlite"))
        self._cache: OrderedDict = OrderedDict()
        self._pictures: OrderedDict[tuple, tuple[bytes, float]] = OrderedDict()
        self._picture_bytes = 0
        self._lock = threading.Lock()
        if warm:
            from lensvault.server.warmup import start_warmup

            self.warmup = start_warmup(self.vault)

    def close(self) -> None:
        self.vault.close()

    def cached(self, key: tuple, compute, *, keep: bool = True):
        """``compute()``, kept (up to 256 answers) when ``keep``: only answers that cannot change."""
        if not keep:
            return compute()
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        value = compute()
        with self._lock:
            self._cache[key] = value
            while len(self._cache) > 256:
                self._cache.popitem(last=False)
        return value

    def kept(self, key: tuple):
        """The answer ``cached`` keeps under ``key``, or None: a lookup that never computes,
        for the event loop (a kept answer is sent without a worker thread)."""
        with self._lock:
            value = self._cache.get(key)
            if value is not None:
                self._cache.move_to_end(key)
            return value

    def picture(self, key: tuple) -> bytes | None:
        """A kept picture's bytes, if its object was found in the store less than
        PICTURE_CHECKED_FOR seconds ago; else None."""
        with self._lock:
            kept = self._pictures.get(key)
            if kept is None or time.monotonic() - kept[1] >= PICTURE_CHECKED_FOR:
                return None
            self._pictures.move_to_end(key)
            return kept[0]

    def keep_picture(self, key: tuple, body: bytes) -> None:
        """Keep a picture's bytes, its object just found in the store (the least recently sent
        go first past PICTURE_BYTES)."""
        if len(body) > PICTURE_BYTES // 16:
            return
        with self._lock:
            old = self._pictures.pop(key, None)
            self._picture_bytes += len(body) - (len(old[0]) if old is not None else 0)
            self._pictures[key] = (body, time.monotonic())
            while self._picture_bytes > PICTURE_BYTES:
                self._picture_bytes -= len(self._pictures.popitem(last=False)[1][0])

    @contextmanager
    def acting(self, user: str):
        """A vault whose writes are recorded as ``user`` (the token's), for one request."""
        import lensvault

        vault = lensvault.open(self.root, actor=user)
        try:
            yield vault
        finally:
            vault.close()
