"""What one server process holds: the vault it reads through, and caches of immutable answers."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path

__all__ = ["ServerState", "exact_ref"]

# name@X.Y.Z(-pre): a written dataset version never changes, so answers about it can be kept.
_EXACT = re.compile(r"^[^@]+@\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")


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
        self._cache: OrderedDict = OrderedDict()
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

    @contextmanager
    def acting(self, user: str):
        """A vault whose writes are recorded as ``user`` (the token's), for one request."""
        import lensvault

        vault = lensvault.open(self.root, actor=user)
        try:
            yield vault
        finally:
            vault.close()
